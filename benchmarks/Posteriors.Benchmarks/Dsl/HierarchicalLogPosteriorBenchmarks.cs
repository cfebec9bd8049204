using BenchmarkDotNet.Attributes;
using Posteriors.Models.Hierarchical;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Dsl;

/// <summary>
/// Centred eight schools (a hierarchical prior θ ~ N(μ, τ) with τ positive): the generated log posterior + gradient
/// against the same model written by hand, one thread. A tiny model, so the generated code's own overhead (the
/// shallow copy of the model, the named prior arguments) is as visible as it gets. Goal: Generated ÷ HandWritten ≤ 1.02.
/// </summary>
[MemoryDiagnoser]
public class HierarchicalLogPosteriorBenchmarks
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);
    private EightSchoolsCentred _model = null!;
    private ParameterTree _parameters = null!;
    private (Tensor Y, Tensor Sigma) _batch;
    private LogPosterior<(Tensor Y, Tensor Sigma)> _handWritten = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        _model = new EightSchoolsCentred { DatasetSize = 8 };
        _parameters = _model.SamplePrior(new Generator(1));
        _batch = EightSchools.Batch();
        _handWritten = (p, b) =>
        {
            var (mu, u, theta) = (p["Mu"], p["log_Tau"], p["Theta"]);
            var tau = u.exp();
            var ll = ((b.Y - theta) / b.Sigma).square() * -0.5 - b.Sigma.log() - HalfLog2Pi;
            var prior = mu.square().sum() * (-0.5 / 25) - (Math.Log(5) + HalfLog2Pi)
                        + (u - (tau / 5).square().log1p()).sum() + (Math.Log(2 / Math.PI) - Math.Log(5))
                        + (((theta - mu) / tau).square() * -0.5 - tau.log()).sum() - 8 * HalfLog2Pi;
            return ll.mean() + prior / 8;
        };
    }

    /// <summary>The generated log posterior and its gradient.</summary>
    [Benchmark]
    public double Generated()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad<(Tensor, Tensor)>(_model.LogPosterior, _parameters, _batch).Value.item<double>();
    }

    /// <summary>The generated log posterior with the prior's gradient in closed form (what the samplers are given).</summary>
    [Benchmark]
    public double GeneratedFirstOrder()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad<(Tensor, Tensor)>(_model.FirstOrderLogPosterior, _parameters, _batch).Value.item<double>();
    }

    // The baseline is declared last: on a shared machine the first method measured is penalised.
    /// <summary>The hand-written log posterior and its gradient.</summary>
    [Benchmark(Baseline = true)]
    public double HandWritten()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad(_handWritten, _parameters, _batch).Value.item<double>();
    }
}
