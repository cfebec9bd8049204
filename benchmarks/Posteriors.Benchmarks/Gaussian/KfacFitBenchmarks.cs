using BenchmarkDotNet.Attributes;
using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Models;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Gaussian;

/// <summary>
/// Fitting KFAC over a data set against training on it, per batch of 128 Fashion-MNIST-sized images through the study's
/// 32-64-128 CNN (every Conv2d and Linear layer). An epoch is N/B batch gradients (the baseline: forward and backward of
/// the log posterior; the optimizer's own step is cheaper than either); a KFAC fit is N/B updates plus one
/// eigendecomposition of the factors. Goal (60,000 images, 468 batches): (468 · KfacUpdateSampled + Eigendecomposition)
/// ÷ (468 · BatchGradient) ≤ 2; KfacUpdateSampledReduce is the same update with the convolutions' reduce factors. Run it
/// alone: <c>--filter '*KfacFit*' --job short --warmupCount 1 --iterationCount 5</c>, or interleaved:
/// <c>interleaved 7 KfacFit</c> (with OMP_NUM_THREADS=1 its CPU-time ratios hold up on a loaded machine). With a
/// stride-1 convolution's A from shifted channel products (docs/ALGORITHMS.md §4a), <c>OMP_NUM_THREADS=1 … interleaved 7
/// KfacFit</c> on the idle machine gives the sampled update 1.50 gradients and a fit 1.61 epochs (two threads,
/// <c>interleaved 15 KfacFit</c>: 1.60 and 1.69), against 2.10 and 2.19 before (docs/STUDY.md).
/// </summary>
[MemoryDiagnoser]
public class KfacFitBenchmarks
{
    private SmallCnn _cnn = null!;
    private ClassificationPosterior _posterior = null!;
    private ParameterTree _params = null!;
    private (Tensor X, Tensor Y) _batch;
    private Kfac<(Tensor X, Tensor Y)> _sampled = null!;
    private Kfac<(Tensor X, Tensor Y)> _exact = null!;
    private Kfac<(Tensor X, Tensor Y)> _reduce = null!;
    private KfacLaplaceState _sampledState = null!;
    private KfacLaplaceState _reduceState = null!;
    private KfacLaplaceState _exactState = null!;

    [GlobalSetup]
    public void Setup()
    {
        manual_seed(0);
        _cnn = new SmallCnn(10, 32, 64, 128);
        _posterior = new ClassificationPosterior(_cnn, 60_000, SmallCnn.DefaultPriorSd);
        _params = ParameterTree.FromModule(_cnn).Clone();
        var g = new Generator(1);
        _batch = (rand(new long[] { 128, 1, 28, 28 }, generator: g), randint(0, 10, new long[] { 128 }, generator: g));
        var model = new ForwardModel<(Tensor X, Tensor Y)>((p, b) =>
        {
            var wrt = ModuleBinding.Bind(_cnn, p);
            return new ModelOutput(_cnn.call(b.X), wrt);
        }, b => b.Y, OutputLikelihood.Categorical);
        _sampled = Kfac.Build(model, _cnn, sampled: true);
        _exact = Kfac.Build(model, _cnn);
        _reduce = Kfac.Build(model, _cnn, sampled: true, convFactors: KfacConvFactors.Reduce);
        _sampledState = _sampled.Update(_sampled.Init(_params), _batch);
        _reduceState = _reduce.Update(_reduce.Init(_params), _batch);
        _exactState = _exact.Init(_params);
    }

    [Benchmark(Baseline = true)]
    public void BatchGradient()
    {
        using var scope = NewDisposeScope();
        Autodiff.ValueAndGrad(_posterior.LogPosterior, _params, _batch);
    }

    [Benchmark]
    public void KfacUpdateSampled()
    {
        using var scope = NewDisposeScope();
        _sampled.Update(_sampledState, _batch, inplace: true);
    }

    /// <summary>The sampled update with the convolutions' reduce factors (patches averaged over positions, gradients summed).</summary>
    [Benchmark]
    public void KfacUpdateSampledReduce()
    {
        using var scope = NewDisposeScope();
        _reduce.Update(_reduceState, _batch, inplace: true);
    }

    [Benchmark]
    public void KfacUpdateExact()
    {
        using var scope = NewDisposeScope();
        _exact.Update(_exactState, _batch, inplace: true);
    }

    /// <summary>Once per fit: every layer's two eigendecompositions (fc1's A is 3,137²).</summary>
    [Benchmark]
    public void Eigendecomposition()
    {
        _sampledState.Invalidate();
        foreach (var (lambdaA, qa, lambdaG, qg) in _sampledState.Eigen().Values)
        {
            lambdaA.Dispose();
            qa.Dispose();
            lambdaG.Dispose();
            qg.Dispose();
        }
        _sampledState.Invalidate();
    }
}
