using Posteriors.Optim;
using BenchmarkDotNet.Attributes;
using Posteriors.Trees;
using Posteriors.Vi;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Gaussian;

/// <summary>
/// One diagonal VI step (S = 1, STL) against an SGHMC-like step on the MLP 784-512-512-10 at batch 32. The baseline
/// is written here as plain TorchSharp (gradient, then momentum SGD plus Gaussian noise, in place), since the SGHMC
/// implementation lives elsewhere. Goal: ratio (VI ÷ SGHMC-like) ≤ 1.2.
/// </summary>
[MemoryDiagnoser]
public class DiagViBenchmarks
{
    private Mlp _mlp = null!;
    private ParameterTree _theta = null!;
    private ParameterTree _momentum = null!;
    private Generator _generator = null!;
    private DiagVi<(Tensor X, Tensor Y)> _viSgd = null!;
    private DiagVi<(Tensor X, Tensor Y)> _viAdam = null!;
    private DiagViState _sgdState = null!;
    private DiagViState _adamState = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(1);
        _mlp = new Mlp();
        _theta = _mlp.Params.Clone();
        _momentum = _theta.ZerosLike();
        _generator = new Generator(1);
        _viSgd = DiagVi.Build(_mlp.LogPosterior, Optimizer.Sgd(1e-3, momentum: 0.9), temperature: 1.0 / 60_000, initLogSd: -3);
        _viAdam = DiagVi.Build(_mlp.LogPosterior, Optimizer.Adam(lr: 1e-3), temperature: 1.0 / 60_000, initLogSd: -3);
        _sgdState = _viSgd.Init(_mlp.Params);
        _adamState = _viAdam.Init(_mlp.Params);
    }

    [Benchmark(Baseline = true)]
    public void SghmcLikeStep()
    {
        using var scope = NewDisposeScope();
        const double lr = 1e-3, alpha = 0.01, temperature = 1.0 / 60_000;
        var noise = Math.Sqrt(2 * temperature * lr * alpha);
        var (_, _, g) = Autodiff.ValueAndGrad(_mlp.LogPosterior, _theta, _mlp.Batch);
        using var _ = no_grad();
        for (var i = 0; i < _theta.Count; i++)
        {
            var m = _momentum.Leaves[i];
            _theta.Leaves[i].add_(m, alpha: lr);
            m.mul_(1 - lr * alpha).add_(g.Leaves[i], alpha: lr)
                .add_(randn(m.shape, dtype: m.dtype, device: m.device, generator: _generator), alpha: noise);
        }
    }

    [Benchmark]
    public void DiagViStepSgdMomentum()
    {
        using var scope = NewDisposeScope();
        _viSgd.Update(_sgdState, _mlp.Batch, inplace: true);
    }

    [Benchmark]
    public void DiagViStepAdam()
    {
        using var scope = NewDisposeScope();
        _viAdam.Update(_adamState, _mlp.Batch, inplace: true);
    }
}
