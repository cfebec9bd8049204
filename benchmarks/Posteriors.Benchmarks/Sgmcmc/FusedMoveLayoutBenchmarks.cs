using BenchmarkDotNet.Attributes;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Sgmcmc;

/// <summary>
/// Whether storing all leaves in one flat buffer would pay on the CPU: SGHMC's fused move (T &gt; 0, noise included) over
/// the MLP 784-512-512-10's six leaves against the same move over one leaf of the same 669,706 elements (the baseline,
/// what a flat buffer would make of it). A ratio near 1 means the per-leaf cost is negligible there.
/// </summary>
public class FusedMoveLayoutBenchmarks
{
    private static readonly long[][] Shapes = [[512, 784], [512], [512, 512], [512], [10, 512], [10]];
    private Sghmc<object?> _sghmc = null!;
    private SghmcState _leaves = null!, _flat = null!;
    private ParameterTree _leafGrad = null!, _flatGrad = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(0);
        _sghmc = Sghmc.Build<object?>((p, _) => p.SumOf(t => t.sum()), 1e-3, alpha: 0.01, temperature: 1e-4);
        ParameterTree Tree() => new(Shapes.Select((shape, i) => new KeyValuePair<string, Tensor>($"p{i}", randn(shape))));
        _leaves = _sghmc.Init(Tree(), seed: 1);
        _leafGrad = Tree();
        var size = Shapes.Sum(s => s.Aggregate(1L, (a, b) => a * b));
        _flat = _sghmc.Init(ParameterTree.From(("p", randn(size))), seed: 1);
        _flatGrad = ParameterTree.From(("p", randn(size)));
    }

    [Benchmark(Baseline = true)]
    public void OneFlatLeaf()
    {
        using var scope = NewDisposeScope();
        _sghmc.Move(_flat, _flatGrad, 1, 1, 0);
    }

    [Benchmark]
    public void SixLeaves()
    {
        using var scope = NewDisposeScope();
        _sghmc.Move(_leaves, _leafGrad, 1, 1, 0);
    }
}
