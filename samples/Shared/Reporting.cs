using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Posteriors.Samples;

/// <summary>CSV, JSON and PNG line plots for the samples' results.</summary>
internal static class Reporting
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void WriteCsv(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<object>> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(',', header));
        foreach (var row in rows)
            sb.AppendLine(string.Join(',', row.Select(v => v switch
            {
                double d => d.ToString("R", Inv),
                float f => f.ToString("R", Inv),
                IFormattable x => x.ToString(null, Inv),
                _ => Quote(v?.ToString() ?? ""),
            })));
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    public static void WriteJson<T>(string path, T value)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
    }

    /// <summary>
    /// One line per series over shared x values; NaN y values are left out of their line. With
    /// <paramref name="wholeNumberTicks"/> the x axis is labelled at each whole number of the data (task or episode counts).
    /// </summary>
    public static void LinePlot(string path, string title, string xLabel, string yLabel, IReadOnlyList<(string Name, double[] X, double[] Y)> series,
        bool wholeNumberTicks = false)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, xs, ys) in series)
        {
            var keep = Enumerable.Range(0, xs.Length).Where(i => double.IsFinite(ys[i])).ToArray();
            if (keep.Length == 0) continue;
            var line = plot.Add.Scatter(keep.Select(i => xs[i]).ToArray(), keep.Select(i => ys[i]).ToArray());
            line.LegendText = name;
            line.MarkerSize = 6;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (wholeNumberTicks && series.SelectMany(s => s.X).ToArray() is { Length: > 0 } allX)
        {
            var ticks = Enumerable.Range((int)Math.Floor(allX.Min()), (int)Math.Floor(allX.Max()) - (int)Math.Floor(allX.Min()) + 1).Select(i => (double)i).ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, ticks.Select(t => t.ToString(Inv)).ToArray());
            plot.Axes.SetLimitsX(ticks[0] - 0.25, ticks[^1] + 0.25);
        }
        plot.ShowLegend();
        AtomicFile.Write(path, temp => plot.SavePng(temp, 900, 560));
    }
}
