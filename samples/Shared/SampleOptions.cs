using System.Globalization;

namespace Posteriors.Samples;

/// <summary>
/// Command-line options of the form <c>--name value</c> or <c>--flag</c>. Every option a sample reads must be declared
/// (name, default, help), so a typo is reported instead of silently ignored.
/// </summary>
internal sealed class SampleOptions
{
    private readonly Dictionary<string, string?> _given = new(StringComparer.Ordinal);
    private readonly List<(string Name, string Default, string Help)> _declared = new();
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public SampleOptions(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Length < 3)
                throw new ArgumentException($"Unexpected argument '{a}'; options look like --name value.", nameof(args));
            var name = a[2..];
            string? value = null;
            var eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            else if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) value = args[++i];
            _given[name] = value;
        }
    }

    public bool Has(string name) => _given.ContainsKey(name);

    public bool Flag(string name, string help)
    {
        _declared.Add((name, "off", help));
        _flags.Add(name);
        if (!_given.TryGetValue(name, out var v)) return false;
        return v is null || v is "true" or "1" or "on" ? true
            : v is "false" or "0" or "off" ? false
            : throw new ArgumentException($"Option --{name} is a flag; got value '{v}'.");
    }

    public string String(string name, string defaultValue, string help)
    {
        _declared.Add((name, defaultValue, help));
        if (!_given.TryGetValue(name, out var v)) return defaultValue;
        return v ?? throw new ArgumentException($"Option --{name} needs a value.");
    }

    public int Int(string name, int defaultValue, string help, int min = 1)
    {
        var s = String(name, defaultValue.ToString(CultureInfo.InvariantCulture), help);
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min)
            throw new ArgumentOutOfRangeException(name, s, $"Option --{name} must be an integer ≥ {min}; got '{s}'.");
        return v;
    }

    public double Double(string name, double defaultValue, string help)
    {
        var s = String(name, defaultValue.ToString("R", CultureInfo.InvariantCulture), help);
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new ArgumentOutOfRangeException(name, s, $"Option --{name} must be a finite number; got '{s}'.");
        return v;
    }

    public double[] Doubles(string name, string defaultValue, string help) =>
        String(name, defaultValue, help).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
                ? v : throw new ArgumentOutOfRangeException(name, s, $"Option --{name} must be a comma-separated list of numbers; got '{s}'."))
            .ToArray();

    /// <summary>Throws when an option was given that the sample never declared.</summary>
    public void EnsureAllKnown()
    {
        var known = _declared.Select(d => d.Name).ToHashSet(StringComparer.Ordinal);
        known.Add("help");
        foreach (var name in _given.Keys)
            if (!known.Contains(name))
                throw new ArgumentException($"Unknown option --{name}. Known: {string.Join(", ", known.Order().Select(k => "--" + k))}.");
    }

    public string Help() => string.Join(Environment.NewLine,
        _declared.DistinctBy(d => d.Name).Select(d => $"  --{d.Name,-18} {d.Help} (default: {d.Default})"));
}
