using BenchmarkDotNet.Attributes;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Sgmcmc;

/// <summary>
/// Per-step overhead on a tiny problem: one SGHMC step of one chain on the 2-D Gaussian of docs/ALGORITHMS.md §7 against the
/// same arithmetic written as a bare TorchSharp loop (value, backward, three in-place ops, one normal draw), and the
/// library's value and gradient alone.
/// Goal: SGHMC ≤ 0.06 ms per step (Python posteriors: 0.47 ms; bare loop 0.04–0.05 ms).
/// </summary>
[MemoryDiagnoser]
public class GaussianStepBenchmarks
{
    private Sghmc<object?> _sghmc = null!;
    private SghmcState _state = null!;
    private Sghmc<object?> _sghmcFirstNoise = null!;
    private SghmcState _stateFirstNoise = null!;
    private Tensor _mean = null!, _precision = null!, _theta = null!, _m = null!;
    private Generator _generator = null!;
    private LogPosterior<object?> _logPosterior = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        _mean = tensor(new[] { 0.5f, -0.3f });
        _precision = tensor(new[,] { { 1.2f, 0.3f }, { 0.3f, 0.8f } });
        LogPosterior<object?> logPosterior = (p, _) =>
        {
            var d = p["theta"] - _mean;
            return (d.matmul(_precision) * d).sum() * -0.5f;
        };
        _logPosterior = logPosterior;
        _sghmc = Sghmc.Build(logPosterior, 0.1, alpha: 10, sigma: Math.Sqrt(10), momenta: InitialMomenta.Zero);
        _state = _sghmc.Init(ParameterTree.From(("theta", zeros(2))), seed: 1);
        _sghmcFirstNoise = Sghmc.Build(logPosterior, 0.1, alpha: 10, sigma: Math.Sqrt(10), momenta: InitialMomenta.Zero);
        _sghmcFirstNoise.NoiseStream = NoiseStream.PhiloxBoxMuller;
        _stateFirstNoise = _sghmcFirstNoise.Init(ParameterTree.From(("theta", zeros(2))), seed: 1);
        _theta = zeros(2).requires_grad_(true);
        _m = zeros(2);
        _generator = new Generator(1);
    }

    [Benchmark(Baseline = true)]
    public void BareTorchSharpLoop()
    {
        using var scope = NewDisposeScope();
        var d = _theta - _mean;
        var value = (d.matmul(_precision) * d).sum() * -0.5f;
        var g = autograd.grad(new[] { value }, new[] { _theta })[0];
        using (no_grad())
        {
            _theta.add_(_m, alpha: 0.01);
            _m.mul_(0.9).add_(g, alpha: 0.1).add_(randn(2, generator: _generator), alpha: Math.Sqrt(2.0));
        }
    }

    [Benchmark]
    public void ValueAndGrad()
    {
        using var scope = NewDisposeScope();
        Autodiff.ValueAndGrad(_logPosterior, _state.Params, null);
    }

    [Benchmark]
    public void SghmcStep()
    {
        using var scope = NewDisposeScope();
        _sghmc.Update(_state, null, inplace: true);
    }

    /// <summary>The same step with the first releases' noise generator: what the default generator's per-block seeding costs a tiny model.</summary>
    [Benchmark]
    public void SghmcStepPhiloxBoxMuller()
    {
        using var scope = NewDisposeScope();
        _sghmcFirstNoise.Update(_stateFirstNoise, null, inplace: true);
    }
}
