using BenchmarkDotNet.Attributes;
using Posteriors.Curvature;
using Posteriors.Laplace;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Gaussian;

/// <summary>
/// Dense Laplace updates restricted to the last layer (1000·10 + 10 = 10,010 parameters) of an MLP 784-512-1000-10 at
/// batch 32: a 10,010² precision (400 MB in float32) must fit, and the time is reported against one batch gradient.
/// </summary>
[MemoryDiagnoser]
public class DenseLastLayerBenchmarks
{
    private Mlp _mlp = null!;
    private DenseFisher<(Tensor X, Tensor Y)> _fisher = null!;
    private DenseGgn<(Tensor X, Tensor Y)> _ggn = null!;
    private DenseLaplaceState _fisherState = null!;
    private DenseLaplaceState _ggnState = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(1);
        _mlp = new Mlp(hidden2: 1000);
        var lastLayer = Subsets.LastLayer(_mlp.Params);
        _fisher = DenseFisher.Build(_mlp.PerDatum, 1.0, lastLayer, _mlp.Module);
        _ggn = DenseGgn.Build(_mlp.Model, 1.0, lastLayer, _mlp.Module);
        _fisherState = _fisher.Init(_mlp.Params);
        _ggnState = _ggn.Init(_mlp.Params);
    }

    [Benchmark(Baseline = true)]
    public void BatchGradient()
    {
        using var scope = NewDisposeScope();
        Autodiff.ValueAndGrad(_mlp.LogPosterior, _mlp.Params, _mlp.Batch);
    }

    [Benchmark]
    public void DenseFisherUpdate()
    {
        using var scope = NewDisposeScope();
        _fisher.Update(_fisherState, _mlp.Batch, inplace: true);
    }

    [Benchmark]
    public void DenseGgnUpdate()
    {
        using var scope = NewDisposeScope();
        _ggn.Update(_ggnState, _mlp.Batch, inplace: true);
    }
}
