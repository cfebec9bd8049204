using System.Globalization;
using System.Text;
using System.Text.Json;
using Posteriors.Metrics;
using Posteriors.Samples;
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

    private static readonly string[] Columns = { "method", "τ", "K", "acc %", "NLL", "ECE %", "Brier", "OOD H", "AUROC", "OOD MI", "s" };

    private const string Caption = "K members; OOD H: mean predictive entropy on OOD inputs (nats); AUROC: OOD vs test by entropy; OOD MI: epistemic part of OOD entropy";

    /// <summary>The table's cells, one array per row, in <see cref="Columns"/> order.</summary>
    private static string[][] Cells(IReadOnlyList<SummaryRow> rows) => rows.Select(r =>
    {
        string Pm(double m, double sd, string f) => r.Runs > 1 ? $"{m.ToString(f, Inv)} ± {sd.ToString(f, Inv)}" : m.ToString(f, Inv);
        return new[]
        {
            r.Method, r.Tau?.ToString("G3", Inv) ?? "—", r.Members.ToString(Inv),
            Pm(100 * r.Accuracy, 100 * r.AccuracySd, "F2"), Pm(r.Nll, r.NllSd, "F4"), (100 * r.Ece).ToString("F2", Inv), r.Brier.ToString("F4", Inv),
            r.OodEntropy.ToString("F2", Inv), r.OodAuroc.ToString("F3", Inv), r.OodEpistemic.ToString("F2", Inv), r.Seconds.ToString("F0", Inv),
        };
    }).ToArray();

    /// <summary>The results table for the console (rounded borders; the best NLL and ECE in bold green).</summary>
    public static Table Table(IReadOnlyList<SummaryRow> rows)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns(Columns);
        table.Caption(Caption);
        var bestNll = rows.Min(r => r.Nll);
        var bestEce = rows.Min(r => r.Ece);
        var cells = Cells(rows);
        for (var i = 0; i < rows.Count; i++)
        {
            var row = cells[i].Select(Markup.Escape).ToArray();
            if (rows[i].Nll == bestNll) row[4] = $"[bold green]{row[4]}[/]";
            if (rows[i].Ece == bestEce) row[5] = $"[bold green]{row[5]}[/]";
            table.AddRow(row);
        }
        return table;
    }

    /// <summary>
    /// The results as plain text: columns padded with spaces (text left, numbers right), no borders, no markup, each
    /// row one line however wide, so it reads the same in a log file, through <c>| tee</c> and in a narrow terminal.
    /// </summary>
    public static IReadOnlyList<string> PlainTable(IReadOnlyList<SummaryRow> rows)
    {
        var cells = Cells(rows);
        var widths = Columns.Select((c, j) => cells.Select(r => r[j].Length).Append(c.Length).Max()).ToArray();
        string Line(string[] row) => string.Join("  ", row.Select((v, j) => j == 0 ? v.PadRight(widths[j]) : v.PadLeft(widths[j]))).TrimEnd();
        return new[] { Line(Columns), string.Join("  ", widths.Select(w => new string('-', w))) }
            .Concat(cells.Select(Line)).Append(Caption).ToArray();
    }

    /// <summary>
    /// Writes the table: the bordered one on a terminal wide enough for it, otherwise (redirected output, a narrow
    /// window) <see cref="PlainTable"/>, written past the console's wrapping so no number is split.
    /// </summary>
    public static void WriteTable(IAnsiConsole console, IReadOnlyList<SummaryRow> rows)
    {
        var plain = PlainTable(rows);
        // The bordered table needs about three more characters per column than the plain one.
        var bordered = plain[0].Length + 3 * Columns.Length + 4;
        if (console.Profile.Capabilities.Ansi && console.Profile.Capabilities.Interactive && console.Profile.Width >= bordered)
        {
            console.Write(Table(rows));
            return;
        }
        var writer = console.Profile.Out.Writer;
        foreach (var line in plain) writer.WriteLine(line);
        writer.Flush();
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
        return AtomicFile.WriteAllText(path, sb.ToString());
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
        return AtomicFile.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
    }

    /// <summary>The plots' file names (every one is rewritten, or removed, with each results.csv).</summary>
    public static IReadOnlyList<string> PlotFiles { get; } = new[] { "nll_vs_temperature.png", "accuracy_vs_temperature.png", "reliability.png" };

    /// <summary>Reliability bins with fewer examples than this are left out of the diagram (their accuracy is mostly noise).</summary>
    public const int MinimumBinCount = 20;

    /// <summary>Series beyond which the reliability diagram gets one panel per method instead of one crowded panel.</summary>
    public const int MaxSeriesPerPanel = 4;

    /// <summary>
    /// Writes nll_vs_temperature.png and accuracy_vs_temperature.png (tempered methods as lines over log₁₀ τ, the others as
    /// horizontal reference lines; the legend beside the axes, never over a point) and reliability.png (accuracy
    /// against confidence per bin with at least <see cref="MinimumBinCount"/> examples, marker area growing with the
    /// bin's count; one panel per method beyond <see cref="MaxSeriesPerPanel"/> series).
    /// </summary>
    public static IReadOnlyList<string> WritePlots(string folder, IReadOnlyList<SummaryRow> rows,
        IReadOnlyDictionary<string, IReadOnlyList<ReliabilityBin>> reliability) => new[]
    {
        TemperaturePlot(folder, rows, PlotFiles[0], "Test NLL (nats)", r => r.Nll),
        TemperaturePlot(folder, rows, PlotFiles[1], "Test accuracy (%)", r => 100 * r.Accuracy),
        ReliabilityPlot(Path.Combine(folder, PlotFiles[2]), reliability),
    };

    private static string ReliabilityPlot(string path, IReadOnlyDictionary<string, IReadOnlyList<ReliabilityBin>> reliability)
    {
        var series = reliability.Select(p => (Label: p.Key, Bins: p.Value.Where(b => b.Count >= MinimumBinCount).ToArray()))
            .Where(s => s.Bins.Length > 0).ToArray();
        var panels = series.Length > MaxSeriesPerPanel ? series.Select(s => new[] { s }).ToArray() : new[] { series };
        var plots = panels.Select((panel, i) =>
        {
            var plot = new Plot();
            var diagonal = plot.Add.Line(0, 0, 1, 1);
            diagonal.LinePattern = LinePattern.Dashed;
            diagonal.Color = Colors.Gray;
            diagonal.LegendText = "perfect calibration";
            var largest = Math.Max(1, panel.SelectMany(s => s.Bins).Select(b => b.Count).DefaultIfEmpty(1).Max());
            foreach (var (label, bins) in panel)
            {
                var color = panels.Length > 1 ? plot.Add.Palette.GetColor(i) : plot.Add.Palette.GetColor(Array.IndexOf(series, (label, bins)));
                var line = plot.Add.Scatter(bins.Select(b => b.Confidence).ToArray(), bins.Select(b => b.Accuracy).ToArray());
                line.LegendText = label;
                line.Color = color;
                line.MarkerSize = 0;
                // Marker area ∝ the bin's count: a well-populated bin reads as more certain than a sparse one.
                foreach (var b in bins)
                {
                    var marker = plot.Add.Marker(b.Confidence, b.Accuracy);
                    marker.Size = (float)(4 + 14 * Math.Sqrt((double)b.Count / largest));
                    marker.Color = color;
                }
            }
            plot.Title(panels.Length > 1 ? panel[0].Label : $"Reliability diagram (bins with ≥ {MinimumBinCount} examples; marker area ∝ count)");
            plot.XLabel("confidence (top-class probability)");
            plot.YLabel("accuracy");
            plot.Axes.SetLimits(0, 1, 0, 1);
            plot.ShowLegend(Alignment.UpperLeft);
            return plot;
        }).ToArray();
        if (plots.Length == 1) return AtomicFile.Write(path, temp => plots[0].SavePng(temp, 800, 600));

        const int cell = 420;
        var columns = Math.Min(3, plots.Length);
        var rowsCount = (plots.Length + columns - 1) / columns;
        return AtomicFile.Write(path, temp =>
        {
            using var surface = SkiaSharp.SKSurface.Create(new SkiaSharp.SKImageInfo(columns * cell, rowsCount * cell));
            surface.Canvas.Clear(SkiaSharp.SKColors.White);
            for (var i = 0; i < plots.Length; i++)
            {
                // Each panel on its own surface (a plot clears whatever canvas it renders to), then placed in the grid.
                using var panel = SkiaSharp.SKSurface.Create(new SkiaSharp.SKImageInfo(cell, cell));
                plots[i].Render(panel);
                using var image = panel.Snapshot();
                surface.Canvas.DrawImage(image, i % columns * cell, i / columns * cell);
            }
            new ScottPlot.Image(surface).SavePng(temp);
        });
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
        // Beside the data area, not over it: a legend inside hid the points it labels.
        plot.ShowLegend(Edge.Right);
        return AtomicFile.Write(Path.Combine(folder, file), temp => plot.SavePng(temp, 950, 500));
    }
}
