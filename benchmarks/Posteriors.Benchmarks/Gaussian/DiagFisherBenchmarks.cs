using BenchmarkDotNet.Attributes;
using Posteriors.Ekf;
using Posteriors.Laplace;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Gaussian;

/// <summary>
/// One diagonal empirical Fisher Laplace update (Σᵢ gᵢ² over a batch of 32, nn.Linear outer-product path) and one
/// diagonal EKF update (the same per-sample factors) against one batch-32 gradient of the same MLP 784-512-512-10.
/// Goal: DiagFisherUpdate and DiagEkfUpdate ÷ BatchGradient ≤ 3.
/// </summary>
[MemoryDiagnoser]
public class DiagFisherBenchmarks
{
    private Mlp _mlp = null!;
    private DiagFisher<(Tensor X, Tensor Y)> _laplace = null!;
    private DiagLaplaceState _state = null!;
    private DiagEkf<(Tensor X, Tensor Y)> _ekf = null!;
    private DiagEkfState _ekfState = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(1);
        _mlp = new Mlp();
        _laplace = DiagFisher.Build(_mlp.PerDatum, 1.0, module: _mlp.Module);
        _state = _laplace.Init(_mlp.Params);
        _ekf = DiagEkf.Build(_mlp.PerDatum, 1e-3, module: _mlp.Module);
        _ekfState = _ekf.Init(_mlp.Params);
    }

    [Benchmark(Baseline = true)]
    public void BatchGradient()
    {
        using var scope = NewDisposeScope();
        Autodiff.ValueAndGrad(_mlp.LogPosterior, _mlp.Params, _mlp.Batch);
    }

    [Benchmark]
    public void DiagFisherUpdate()
    {
        using var scope = NewDisposeScope();
        _laplace.Update(_state, _mlp.Batch, inplace: true);
    }

    [Benchmark]
    public void DiagEkfUpdate()
    {
        using var scope = NewDisposeScope();
        _ekf.Update(_ekfState, _mlp.Batch, inplace: true);
    }
}
