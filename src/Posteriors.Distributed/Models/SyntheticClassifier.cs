using Posteriors.Models;
using Posteriors.Models.Data;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Models;

/// <summary>
/// The built-in model <c>mlp-synthetic</c>: an MLP classifier (flatten → dense/ReLU layers → 10 logits) with a
/// N(0, σ²) prior on synthetic 28×28 images (<see cref="SyntheticImages"/>), so that tests and benchmarks need no files.
/// Settings: <c>train</c> (N, default 512), <c>test</c> (256), <c>hidden</c> (widths joined by commas, default
/// <c>32</c>; <c>512,512</c> is the MLP 784-512-512-10), <c>batch</c> (64), <c>prior_sd</c> (1), <c>data_seed</c> (0).
/// </summary>
public sealed class SyntheticClassifier : ClassifierModel
{
    /// <summary>The catalog name.</summary>
    public const string Name = "mlp-synthetic";

    private readonly MlpClassifier _module;
    private readonly ImageDataSet _train, _test;

    /// <summary>Builds the model a spec describes.</summary>
    /// <exception cref="ArgumentException">A setting is malformed or out of range.</exception>
    public SyntheticClassifier(ModelSpec spec) : this(spec, Parts(spec)) { }

    private SyntheticClassifier(ModelSpec spec, (MlpClassifier Module, ImageDataSet Train, ImageDataSet Test, int Batch) parts)
        : base(parts.Module, parts.Train.Count, spec.Double("prior_sd", 1.0))
    {
        (_module, _train, _test, BatchSize) = parts;
    }

    private static (MlpClassifier, ImageDataSet, ImageDataSet, int) Parts(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var hidden = spec.Text("hidden", "32").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => int.TryParse(w, out var x) && x > 0 ? x
                : throw new ArgumentException($"Setting 'hidden' of model '{Name}' must list positive widths; got '{spec.Text("hidden", "")}'.", nameof(spec)))
            .ToArray();
        var batch = spec.Long("batch", 64);
        var (train, test) = SyntheticImages.Generate(checked((int)spec.Long("train", 512)), checked((int)spec.Long("test", 256)), spec.Long("data_seed", 0));
        if (batch < 1 || batch > train.Count)
            throw new ArgumentOutOfRangeException(nameof(spec), batch, $"Setting 'batch' of model '{Name}' must lie in [1, {train.Count}].");
        lock (ModelCatalog.GlobalGeneratorLock) return (new MlpClassifier(28 * 28, hidden, train.Classes), train, test, (int)batch);
    }

    /// <inheritdoc />
    public override Tensor TrainX => _train.Images;

    /// <inheritdoc />
    public override Tensor TrainY => _train.Labels;

    /// <inheritdoc />
    public override Tensor TestX => _test.Images;

    /// <inheritdoc />
    public override Tensor TestY => _test.Labels;

    /// <inheritdoc />
    public override int BatchSize { get; }

    /// <summary>
    /// PyTorch's default initialisation of linear layers (uniform in ±1/√fan-in), drawn from a generator of its own
    /// seeded with (seed, member): grains on one silo initialise concurrently, so the global generator is not used.
    /// </summary>
    public override ParameterTree InitialParameters(long seed, int member)
    {
        var generator = new Generator((ulong)Rng.Mix(seed, member, stream: 2));
        var shapes = ParameterTree.FromModule(_module);
        long fanIn = 1;
        return shapes.Map((name, t) =>
        {
            if (t.dim() > 1) fanIn = t.shape[1];     // a weight; its bias follows it
            var bound = 1.0 / Math.Sqrt(fanIn);
            using var u = rand(t.shape, dtype: t.dtype, device: t.device, generator: generator);
            return u.mul(2 * bound).sub_(bound).DetachFromDisposeScope();
        });
    }
}
