using System.Collections.Concurrent;
using Posteriors.Models;
using Posteriors.Models.Data;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Models;

/// <summary>
/// The built-in model <c>image-cnn</c>: <see cref="SmallCnn"/> with a N(0, σ²) prior on Fashion-MNIST (or its synthetic
/// stand-in), described so that a silo rebuilds exactly what a single-process program built:
/// <list type="bullet">
/// <item><c>data</c>: <c>fashion-mnist</c> (IDX files in <c>data_folder</c>, default: the usual search) or <c>synthetic</c>
/// (<c>synthetic_train</c>, <c>synthetic_test</c> images from <c>synthetic_seed</c>);</item>
/// <item><c>subset</c>, <c>subset_seed</c>: the training set is <see cref="ImageDataSet.Subset"/> of that many images;</item>
/// <item><c>widths</c> (<c>c1,c2,hidden</c>), <c>batch</c>, <c>prior_sd</c>;</item>
/// <item><c>init_seed</c>: member k starts from the module's default initialisation after <c>torch.manual_seed(init_seed + k)</c>;</item>
/// <item><c>batch_seed</c>: epoch e's order is the (e+1)-th permutation drawn from one generator seeded with it
/// (<see cref="ImageDataSet.Batches"/>).</item>
/// </list>
/// The data are loaded once per silo and shared read-only by its grains.
/// </summary>
public sealed class ImageCnn : ClassifierModel
{
    /// <summary>The catalog name.</summary>
    public const string Name = "image-cnn";

    private static readonly ConcurrentDictionary<string, Lazy<ImageDataSet>> Data = new();
    private readonly ImageDataSet _train;
    private readonly (int C1, int C2, int Hidden) _widths;
    private readonly long _initSeed;
    private readonly ulong _batchSeed;
    private Generator? _generator;
    private long _epoch = -1;
    private Tensor? _order;

    /// <summary>Builds the model a spec describes.</summary>
    /// <exception cref="ArgumentException">A setting is malformed or out of range.</exception>
    public ImageCnn(ModelSpec spec) : this(spec, Parts(spec)) { }

    private ImageCnn(ModelSpec spec, (SmallCnn Module, ImageDataSet Train, (int, int, int) Widths, int Batch) parts)
        : base(parts.Module, parts.Train.Count, spec.Double("prior_sd", SmallCnn.DefaultPriorSd))
    {
        (_, _train, _widths, BatchSize) = parts;
        _initSeed = spec.Long("init_seed", 1);
        _batchSeed = unchecked((ulong)spec.Long("batch_seed", 17));
    }

    private static (SmallCnn, ImageDataSet, (int, int, int), int) Parts(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var w = spec.Text("widths", "16,32,64").Split(',').Select(x => int.TryParse(x, out var v) && v > 0 ? v : -1).ToArray();
        if (w.Length != 3 || w.Any(v => v < 1))
            throw new ArgumentException($"Setting 'widths' of model '{Name}' must be three positive integers; got '{spec.Text("widths", "")}'.", nameof(spec));
        var train = Data.GetOrAdd(DataKey(spec), _ => new Lazy<ImageDataSet>(() => LoadTrain(spec))).Value;
        var batch = spec.Long("batch", 128);
        if (batch < 1 || batch > train.Count)
            throw new ArgumentOutOfRangeException(nameof(spec), batch, $"Setting 'batch' of model '{Name}' must lie in [1, {train.Count}].");
        lock (ModelCatalog.GlobalGeneratorLock) return (new SmallCnn(train.Classes, w[0], w[1], w[2]), train, (w[0], w[1], w[2]), (int)batch);
    }

    private static string DataKey(ModelSpec spec) => string.Join("|", new[] { "data", "data_folder", "synthetic_train", "synthetic_test", "synthetic_seed", "subset", "subset_seed" }
        .Select(k => $"{k}={spec.Text(k, "")}"));

    private static ImageDataSet LoadTrain(ModelSpec spec)
    {
        var source = spec.Text("data", "fashion-mnist");
        var train = source switch
        {
            "fashion-mnist" => FashionMnist.Load(spec.Settings.GetValueOrDefault("data_folder")).Train,
            "synthetic" => SyntheticImages.Generate(checked((int)spec.Long("synthetic_train", 1000)), checked((int)spec.Long("synthetic_test", 500)),
                spec.Long("synthetic_seed", 1)).Train,
            _ => throw new ArgumentException($"Setting 'data' of model '{Name}' must be 'fashion-mnist' or 'synthetic'; got '{source}'.", nameof(spec)),
        };
        return spec.Settings.ContainsKey("subset") ? train.Subset(spec.Long("subset", train.Count), spec.Long("subset_seed", 11)) : train;
    }

    /// <inheritdoc />
    public override Tensor TrainX => _train.Images;

    /// <inheritdoc />
    public override Tensor TrainY => _train.Labels;

    /// <inheritdoc />
    public override int BatchSize { get; }

    /// <summary>The module's default initialisation after <c>manual_seed(init_seed + member)</c>; <paramref name="seed"/> is the run's noise seed and plays no part.</summary>
    public override ParameterTree InitialParameters(long seed, int member)
    {
        // The global generator is shared by every grain of the silo: seeding and drawing must not interleave with another's.
        lock (ModelCatalog.GlobalGeneratorLock)
        {
            manual_seed(_initSeed + member);
            using var module = new SmallCnn(_train.Classes, _widths.C1, _widths.C2, _widths.Hidden);
            return ParameterTree.FromModule(module).Clone();
        }
    }

    /// <summary>Epoch e's order is the (e+1)-th permutation of one generator seeded with <c>batch_seed</c>; <paramref name="seed"/> plays no part.</summary>
    public override Tensor BatchIndices(long seed, long step)
    {
        var epoch = step / StepsPerEpoch;
        if (_generator is null || epoch < _epoch)
        {
            _generator = new Generator(_batchSeed);
            _epoch = -1;
        }
        while (_epoch < epoch)
        {
            _order?.Dispose();
            _order = randperm(DataSize, generator: _generator).DetachFromDisposeScope();
            _epoch++;
        }
        return _order!.narrow(0, step % StepsPerEpoch * BatchSize, BatchSize);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _order?.Dispose();
        base.Dispose(disposing);
    }
}
