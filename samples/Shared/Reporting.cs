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
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
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
        File.WriteAllText(path, sb.ToString());
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    public static void WriteJson<T>(string path, T value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
    }

    /// <summary>One line per series over shared x values; NaN y values are left out of their line.</summary>
    public static void LinePlot(string path, string title, string xLabel, string yLabel, IReadOnlyList<(string Name, double[] X, double[] Y)> series)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
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
        plot.ShowLegend();
        plot.SavePng(path, 900, 560);
    }
}
