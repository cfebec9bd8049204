using System.Text.Json;

namespace Posteriors.Cli.Study;

/// <summary>Everything the cold-posterior study can be told from the command line.</summary>
public sealed record StudyOptions
{
    /// <summary>Methods to run, by name (see <see cref="MethodRegistry"/>); empty = the mode's default set.</summary>
    public IReadOnlyList<string> Methods { get; init; } = Array.Empty<string>();

    /// <summary>τ values for the tempered methods (T = τ/N); empty = the mode's default.</summary>
    public IReadOnlyList<double> Temperatures { get; init; } = Array.Empty<double>();

    /// <summary>Training epochs per run (null = the mode's default).</summary>
    public int? Epochs { get; init; }

    /// <summary>Seeds; every method runs once per seed.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = new[] { 0 };

    /// <summary>"cpu" or "cuda" (or "cuda:1", …).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Folder that receives one run folder per run (results.csv, results.json, the plots, checkpoints).</summary>
    public string Output { get; init; } = "results/cold-posterior";

    /// <summary>The full study (all data, all methods and temperatures, more epochs).</summary>
    public bool Full { get; init; }

    /// <summary>A seconds-long configuration (tests, smoke checks): tiny data, CNN and epochs.</summary>
    public bool Tiny { get; init; }

    /// <summary>Training examples to use (null = the mode's default).</summary>
    public int? TrainSize { get; init; }

    /// <summary>Test examples to evaluate on (null = the mode's default).</summary>
    public int? TestSize { get; init; }

    /// <summary>Mini-batch size (null = the mode's default).</summary>
    public int? BatchSize { get; init; }

    /// <summary>Members of ensembles and parallel chains (null = the mode's default).</summary>
    public int? Members { get; init; }

    /// <summary>Folder with the Fashion-MNIST IDX files (null = search the usual places).</summary>
    public string? DataFolder { get; init; }

    /// <summary>Use the synthetic stand-in even when the real data are available (tests, quick checks).</summary>
    public bool Synthetic { get; init; }

    /// <summary>Never try to install the data package.</summary>
    public bool NoInstall { get; init; }

    /// <summary>Torch intra-op threads.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Skip the PNG plots.</summary>
    public bool NoPlots { get; init; }

    /// <summary>Continue the latest run folder instead of starting a new one.</summary>
    public bool Resume { get; init; }

    /// <summary>Layers the Laplace methods cover: "last" (fc2), "dense" (fc1 and fc2) or "all" (the convolutions too).</summary>
    public string LaplaceLayers { get; init; } = "last";

    /// <summary>Learning rate η of the SGD that SGHMC reduces to at T = 0 (null = <see cref="Study.Methods.SghmcSettings.DefaultSgdLr"/>).</summary>
    public double? SgdLr { get; init; }

    /// <summary>CNN widths (conv1, conv2, dense); null = the mode's default.</summary>
    public (int C1, int C2, int Hidden)? Widths { get; init; }

    /// <summary>
    /// The generator of the samplers' step noise: <see cref="NoiseStream.PhiloxXoshiro"/> (the default) or
    /// <see cref="NoiseStream.PhiloxBoxMuller"/>, which reproduces runs made before it became the default.
    /// </summary>
    public NoiseStream NoiseStream { get; init; } = NoiseStream.PhiloxXoshiro;

    /// <summary>A Posteriors cluster (Redis membership address HOST:PORT) to run ensemble members on, or null for this process.</summary>
    public string? Cluster { get; init; }

    /// <summary>The defaults of the quick mode (the README's main command), of <c>--full</c> or of <c>--tiny</c>, filled into unset options.</summary>
    public StudyOptions Resolved()
    {
        var (full, tiny) = (Full, Tiny);
        T Pick<T>(T quick, T whole, T small) => tiny ? small : full ? whole : quick;
        return this with
        {
            Methods = Methods.Count > 0 ? Methods : (full ? MethodRegistry.All.Select(m => m.Name).ToArray() : MethodRegistry.QuickDefaults),
            Temperatures = Temperatures.Count > 0 ? Temperatures : (full ? new[] { 0.03, 0.1, 0.3, 1, 3 } : new[] { 0.1, 1.0 }),
            Epochs = Epochs ?? Pick(40, 10, 2),
            TrainSize = TrainSize ?? Pick(3_000, 60_000, 512),
            TestSize = TestSize ?? Pick(10_000, 10_000, 256),
            BatchSize = BatchSize ?? Pick(128, 128, 64),
            Members = Members ?? Pick(5, 5, 2),
            SgdLr = SgdLr ?? Study.Methods.SghmcSettings.DefaultSgdLr,
            Widths = Widths ?? Pick((16, 32, 64), (32, 64, 128), (4, 8, 16)),
        };
    }

    /// <summary>Checks the values; the message names the option and the value.</summary>
    /// <exception cref="ArgumentException">An option has an invalid value.</exception>
    public void Validate()
    {
        static void Positive(int? value, string option)
        {
            if (value is < 1) throw new ArgumentException($"{option} must be a positive integer; got {value}.");
        }
        Positive(Epochs, "--epochs");
        Positive(BatchSize, "--batch-size");
        Positive(TrainSize, "--train-size");
        Positive(TestSize, "--test-size");
        Positive(Members, "--members");
        if (Threads < 1) throw new ArgumentException($"--threads must be a positive integer; got {Threads}.");
        if (SgdLr is { } lr && (!(lr > 0) || double.IsInfinity(lr))) throw new ArgumentException($"--sgd-lr must be positive and finite; got {lr}.");
        if (LaplaceLayers is not ("last" or "dense" or "all")) throw new ArgumentException($"--laplace-layers must be 'last', 'dense' or 'all'; got '{LaplaceLayers}'.");
        if (Seeds.Count == 0) throw new ArgumentException("--seeds needs at least one seed.");
        if (Widths is { } w && (w.C1 < 1 || w.C2 < 1 || w.Hidden < 1)) throw new ArgumentException($"--widths must be three positive integers; got {w.C1},{w.C2},{w.Hidden}.");
        foreach (var t in Temperatures)
            if (!(t > 0) || double.IsInfinity(t)) throw new ArgumentException($"--temperatures must be positive and finite; got {t}.");
        foreach (var m in Methods)
            if (MethodRegistry.Find(m) is null)
                throw new ArgumentException($"--methods: unknown method '{m}'. Known: {string.Join(", ", MethodRegistry.All.Select(x => x.Name))}.");
        if (Full && Tiny) throw new ArgumentException("--full and --tiny exclude each other.");
    }

    /// <summary>
    /// What makes two runs' numbers comparable: the resolved options without where the results go and what is
    /// printed or plotted. <c>--resume</c> continues a run folder only with the same settings.
    /// </summary>
    public IReadOnlyDictionary<string, string> Settings()
    {
        var resolved = Resolved() with { Output = "", Resume = false, NoPlots = false, NoInstall = false };
        var json = JsonSerializer.SerializeToElement(resolved, SettingsJson);
        return json.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText());
    }

    private static readonly JsonSerializerOptions SettingsJson = new() { IncludeFields = true };
}
