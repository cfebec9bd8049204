using System.Globalization;
using System.Text;
using System.Text.Json;
using Posteriors.Metrics;
using ScottPlot;
using Spectre.Console;

namespace Posteriors.Cli.Study;

/// <summary>Results of several seeds of one method at one τ, averaged.</summary>
public sealed record SummaryRow(string Method, double? Tau, int Runs, int Members,
    double Accuracy, double AccuracySd, double Nll, double NllSd, double Ece, double Brier, double OodEntropy, double OodAuroc, double OodEpistemic, double Seconds)
{
    /// <summary>"map" or "sghmc-parallel τ=0.1".</summary>
    public string Label => Tau is { } t ? $"{Method} τ={t.ToString("G3", CultureInfo.InvariantCulture)}" : Method;
}

/// <summary>Tables, CSV/JSON files and plots of a finished study.</summary>
public static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Averages the runs of each (method, τ) over seeds, in the order the methods ran.</summary>
    public static IReadOnlyList<SummaryRow> Summarize(IReadOnlyList<StudyResult> results) =>
        results.GroupBy(r => (r.Method, r.Tau)).Select(g =>
        {
            double Mean(Func<StudyResult, double> f) => g.Average(f);
            double Sd(Func<StudyResult, double> f)
            {
                if (g.Count() < 2) return 0;
                var m = Mean(f);
                return Math.Sqrt(g.Sum(r => (f(r) - m) * (f(r) - m)) / (g.Count() - 1));
            }
            return new SummaryRow(g.Key.Method, g.Key.Tau, g.Count(), g.First().Members,
                Mean(r => r.Accuracy), Sd(r => r.Accuracy), Mean(r => r.Nll), Sd(r => r.Nll), Mean(r => r.Ece), Mean(r => r.Brier),
                Mean(r => r.OodEntropy), Mean(r => r.OodAuroc), Mean(r => r.OodEpistemic), Mean(r => r.Seconds));
        }).ToArray();

    /// <summary>The results table for the console.</summary>
    public static Table Table(IReadOnlyList<SummaryRow> rows)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("method", "τ", "K", "acc %", "NLL", "ECE %", "Brier", "OOD H", "AUROC", "OOD MI", "s");
        table.Caption("K members; OOD H: mean predictive entropy on OOD inputs (nats); AUROC: OOD vs test by entropy; OOD MI: epistemic part of OOD entropy");
        var bestNll = rows.Min(r => r.Nll);
        var bestEce = rows.Min(r => r.Ece);
        foreach (var r in rows)
        {
            string Pm(double m, double sd, string f) => r.Runs > 1 ? $"{m.ToString(f, Inv)} ± {sd.ToString(f, Inv)}" : m.ToString(f, Inv);
            string Bold(string s, bool best) => best ? $"[bold green]{s}[/]" : s;
            table.AddRow(Markup.Escape(r.Method), r.Tau?.ToString("G3", Inv) ?? "—", r.Members.ToString(Inv),
                Pm(100 * r.Accuracy, 100 * r.AccuracySd, "F2"), Bold(Pm(r.Nll, r.NllSd, "F4"), r.Nll == bestNll),
                Bold((100 * r.Ece).ToString("F2", Inv), r.Ece == bestEce), r.Brier.ToString("F4", Inv),
                r.OodEntropy.ToString("F2", Inv), r.OodAuroc.ToString("F3", Inv), r.OodEpistemic.ToString("F2", Inv), r.Seconds.ToString("F0", Inv));
        }
        return table;
    }

    /// <summary>
    /// The quality check of the study: Bayesian rows that beat MAP on NLL and on ECE at equal or better accuracy.
    /// Null when MAP was not run.
    /// </summary>
    public static IReadOnlyList<SummaryRow>? BeatMap(IReadOnlyList<SummaryRow> rows)
    {
        var map = rows.FirstOrDefault(r => r.Method == "map");
        if (map is null) return null;
        return rows.Where(r => r.Method != "map" && r.Nll < map.Nll && r.Ece < map.Ece && r.Accuracy >= map.Accuracy).ToArray();
    }

    /// <summary>Writes results.csv (one line per run).</summary>
    public static string WriteCsv(string folder, IReadOnlyList<StudyResult> results)
    {
        var path = Path.Combine(folder, "results.csv");
        var sb = new StringBuilder("method,tau,seed,members,accuracy,nll,ece,brier,test_entropy,ood_entropy,ood_auroc,ood_epistemic,seconds\n");
        foreach (var r in results)
            sb.AppendLine(string.Join(",", r.Method, r.Tau?.ToString("R", Inv) ?? "", r.Seed.ToString(Inv), r.Members.ToString(Inv),
                F(r.Accuracy), F(r.Nll), F(r.Ece), F(r.Brier), F(r.TestEntropy), F(r.OodEntropy), F(r.OodAuroc), F(r.OodEpistemic), F(r.Seconds)));
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static string F(double v) => v.ToString("G6", Inv);

    /// <summary>Writes results.json: the options, the data description, every run, the summary and the reliability bins.</summary>
    public static string WriteJson(string folder, StudyOptions options, string data, IReadOnlyList<StudyResult> results,
        IReadOnlyList<SummaryRow> summary, IReadOnlyDictionary<string, IReadOnlyList<ReliabilityBin>> reliability)
    {
        var path = Path.Combine(folder, "results.json");
        var doc = new
        {
            options = new
            {
                options.Full, options.Methods, options.Temperatures, options.Epochs, options.Seeds, options.TrainSize, options.TestSize,
                options.BatchSize, options.Members, options.Device, options.Threads,
                widths = new[] { options.Widths!.Value.C1, options.Widths.Value.C2, options.Widths.Value.Hidden },
            },
            data,
            runs = results,
            summary,
            reliability = reliability.ToDictionary(p => p.Key, p => p.Value.Select(b => new
            {
                b.Lower, b.Upper, b.Count,
                confidence = double.IsNaN(b.Confidence) ? (double?)null : b.Confidence,
                accuracy = double.IsNaN(b.Accuracy) ? (double?)null : b.Accuracy,
            })),
        };
        File.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        return path;
    }

    /// <summary>
    /// Writes nll_vs_temperature.png and accuracy_vs_temperature.png (tempered methods as lines over log₁₀ τ, the others as
    /// horizontal reference lines) and reliability.png (accuracy against confidence per bin).
    /// </summary>
    public static IReadOnlyList<string> WritePlots(string folder, IReadOnlyList<SummaryRow> rows,
        IReadOnlyDictionary<string, IReadOnlyList<ReliabilityBin>> reliability)
    {
        var paths = new List<string>
        {
            TemperaturePlot(folder, rows, "nll_vs_temperature.png", "Test NLL (nats)", r => r.Nll),
            TemperaturePlot(folder, rows, "accuracy_vs_temperature.png", "Test accuracy (%)", r => 100 * r.Accuracy),
        };
        var plot = new Plot();
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.Color = Colors.Gray;
        diagonal.LegendText = "perfect calibration";
        foreach (var (label, bins) in reliability)
        {
            var used = bins.Where(b => b.Count > 0).ToArray();
            if (used.Length == 0) continue;
            var s = plot.Add.Scatter(used.Select(b => b.Confidence).ToArray(), used.Select(b => b.Accuracy).ToArray());
            s.LegendText = label;
            s.MarkerSize = 6;
        }
        plot.Title("Reliability diagram (15 confidence bins)");
        plot.XLabel("confidence (top-class probability)");
        plot.YLabel("accuracy");
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.ShowLegend(Alignment.UpperLeft);
        var path = Path.Combine(folder, "reliability.png");
        plot.SavePng(path, 800, 600);
        paths.Add(path);
        return paths;
    }

    private static string TemperaturePlot(string folder, IReadOnlyList<SummaryRow> rows, string file, string yLabel, Func<SummaryRow, double> metric)
    {
        var plot = new Plot();
        var taus = rows.Where(r => r.Tau is not null).Select(r => r.Tau!.Value).Distinct().Order().ToArray();
        foreach (var group in rows.Where(r => r.Tau is not null).GroupBy(r => r.Method))
        {
            var points = group.OrderBy(r => r.Tau).ToArray();
            var s = plot.Add.Scatter(points.Select(r => Math.Log10(r.Tau!.Value)).ToArray(), points.Select(metric).ToArray());
            s.LegendText = group.Key;
            s.MarkerSize = 7;
        }
        foreach (var r in rows.Where(r => r.Tau is null))
        {
            var line = plot.Add.HorizontalLine(metric(r));
            line.LegendText = r.Method + " (T = 0)";
            line.LinePattern = LinePattern.Dashed;
        }
        if (taus.Length > 0)
        {
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                taus.Select(Math.Log10).ToArray(), taus.Select(t => t.ToString("G3", Inv)).ToArray());
            plot.Axes.SetLimitsX(Math.Log10(taus[0]) - 0.2, Math.Log10(taus[^1]) + 0.2);
        }
        plot.Title($"{yLabel.Split(' ')[1]} against temperature (T = τ/N; τ = 1 is the Bayes posterior)");
        plot.XLabel("τ (log scale)");
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.UpperRight);
        var path = Path.Combine(folder, file);
        plot.SavePng(path, 800, 500);
        return path;
    }
}
