namespace Posteriors.Cli.Study;

/// <summary>Everything the cold-posterior study can be told from the command line.</summary>
public sealed record StudyOptions
{
    /// <summary>Methods to run, by name (see <see cref="MethodRegistry"/>); empty = the mode's default set.</summary>
    public IReadOnlyList<string> Methods { get; init; } = Array.Empty<string>();

    /// <summary>τ values for the tempered methods (T = τ/N); empty = the mode's default.</summary>
    public IReadOnlyList<double> Temperatures { get; init; } = Array.Empty<double>();

    /// <summary>Training epochs per run (0 = the mode's default).</summary>
    public int Epochs { get; init; }

    /// <summary>Seeds; every method runs once per seed.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = new[] { 0 };

    /// <summary>"cpu" or "cuda" (or "cuda:1", …).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Folder for results.csv, results.json and the plots.</summary>
    public string Output { get; init; } = "results/cold-posterior";

    /// <summary>The full study (all data, all methods and temperatures, more epochs).</summary>
    public bool Full { get; init; }

    /// <summary>Training examples to use (0 = the mode's default).</summary>
    public int TrainSize { get; init; }

    /// <summary>Test examples to evaluate on (0 = the mode's default).</summary>
    public int TestSize { get; init; }

    /// <summary>Mini-batch size.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Members of ensembles and parallel chains (0 = the mode's default).</summary>
    public int Members { get; init; }

    /// <summary>Folder with the Fashion-MNIST IDX files (null = search the usual places).</summary>
    public string? DataFolder { get; init; }

    /// <summary>Use the synthetic stand-in even when the real data are available (tests, quick checks).</summary>
    public bool Synthetic { get; init; }

    /// <summary>Never try to install the data package.</summary>
    public bool NoInstall { get; init; }

    /// <summary>Torch intra-op threads (0 = the number of cores).</summary>
    public int Threads { get; init; }

    /// <summary>Skip the PNG plots.</summary>
    public bool NoPlots { get; init; }

    /// <summary>Layers the Laplace methods cover: "last" (fc2) or "dense" (fc1 and fc2).</summary>
    public string LaplaceLayers { get; init; } = "last";

    /// <summary>Learning rate η of the SGD that SGHMC reduces to at T = 0 (sets σ and α; 0 = <see cref="Study.Methods.SghmcSettings.DefaultSgdLr"/>).</summary>
    public double SgdLr { get; init; }

    /// <summary>CNN widths (conv1, conv2, dense); null = the mode's default.</summary>
    public (int C1, int C2, int Hidden)? Widths { get; init; }

    /// <summary>A Posteriors cluster (Redis membership address HOST:PORT) to run ensemble members on, or null for this process.</summary>
    public string? Cluster { get; init; }

    /// <summary>With <see cref="Cluster"/>: continue the members of an interrupted run from their checkpoints.</summary>
    public bool Resume { get; init; }

    /// <summary>The defaults of the quick mode (the README's main command) or of <c>--full</c>, filled into unset options.</summary>
    public StudyOptions Resolved()
    {
        var full = Full;
        return this with
        {
            Methods = Methods.Count > 0 ? Methods : (full ? MethodRegistry.All.Select(m => m.Name).ToArray() : MethodRegistry.QuickDefaults),
            Temperatures = Temperatures.Count > 0 ? Temperatures : (full ? new[] { 0.03, 0.1, 0.3, 1, 3 } : new[] { 0.1, 1.0 }),
            Epochs = Epochs > 0 ? Epochs : (full ? 10 : 40),
            TrainSize = TrainSize > 0 ? TrainSize : (full ? 60_000 : 3_000),
            TestSize = TestSize > 0 ? TestSize : 10_000,
            Members = Members > 0 ? Members : 5,
            SgdLr = SgdLr > 0 ? SgdLr : Study.Methods.SghmcSettings.DefaultSgdLr,
            Threads = Threads > 0 ? Threads : Environment.ProcessorCount,
            Widths = Widths ?? (full ? (32, 64, 128) : (16, 32, 64)),
        };
    }

    /// <summary>Checks the values; the message names the option.</summary>
    /// <exception cref="ArgumentException">An option has an invalid value.</exception>
    public void Validate()
    {
        if (Epochs < 0) throw new ArgumentException($"--epochs must be positive; got {Epochs}.");
        if (BatchSize < 1) throw new ArgumentException($"--batch-size must be positive; got {BatchSize}.");
        if (TrainSize < 0) throw new ArgumentException($"--train-size must be positive; got {TrainSize}.");
        if (TestSize < 0) throw new ArgumentException($"--test-size must be positive; got {TestSize}.");
        if (!(SgdLr >= 0) || double.IsInfinity(SgdLr)) throw new ArgumentException($"--sgd-lr must be positive and finite; got {SgdLr}.");
        if (Members < 0) throw new ArgumentException($"--members must be positive; got {Members}.");
        if (LaplaceLayers is not ("last" or "dense")) throw new ArgumentException($"--laplace-layers must be 'last' or 'dense'; got '{LaplaceLayers}'.");
        if (Seeds.Count == 0) throw new ArgumentException("--seeds needs at least one seed.");
        foreach (var t in Temperatures)
            if (!(t > 0) || double.IsInfinity(t)) throw new ArgumentException($"--temperatures must be positive and finite; got {t}.");
        foreach (var m in Methods)
            if (MethodRegistry.Find(m) is null)
                throw new ArgumentException($"--methods: unknown method '{m}'. Known: {string.Join(", ", MethodRegistry.All.Select(x => x.Name))}.");
    }
}
