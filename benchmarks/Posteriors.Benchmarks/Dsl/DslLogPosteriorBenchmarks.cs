using BenchmarkDotNet.Attributes;
using Posteriors.Modeling;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Dsl;

/// <summary>An MLP 784-512-512-10 declared with the model DSL.</summary>
[Model]
public partial class DslMlp
{
    /// <summary>First layer.</summary>
    [Prior(Distribution.Normal, 0, 1)] public Linear Fc1 = nn.Linear(784, 512);

    /// <summary>Second layer.</summary>
    [Prior(Distribution.Normal, 0, 1)] public Linear Fc2 = nn.Linear(512, 512);

    /// <summary>Output layer.</summary>
    [Prior(Distribution.Normal, 0, 1)] public Linear Fc3 = nn.Linear(512, 10);

    /// <summary>Class logits.</summary>
    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor x) => Fc3.forward(nn.functional.relu(Fc2.forward(nn.functional.relu(Fc1.forward(x)))));
}

/// <summary>
/// Generated log posterior + gradient against the same model written by hand in TorchSharp (functional layers on the
/// tree's tensors, the same prior), MLP 784-512-512-10, batch 128, one thread. Goal: ratio (Generated ÷ HandWritten) ≤ 1.02.
/// </summary>
[MemoryDiagnoser]
public class DslLogPosteriorBenchmarks
{
    private const long N = 60_000;
    private DslMlp _model = null!;
    private ParameterTree _parameters = null!;
    private (Tensor X, Tensor Y) _batch;
    private LogPosterior<(Tensor X, Tensor Y)> _handWritten = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        torch.manual_seed(0);
        _model = new DslMlp { DatasetSize = N };
        _parameters = _model.InitialParameters();
        _batch = (randn(128, 784), randint(0, 10, new long[] { 128 }));
        _handWritten = (p, batch) =>
        {
            var h = nn.functional.relu(nn.functional.linear(batch.X, p["Fc1.weight"], p["Fc1.bias"]));
            h = nn.functional.relu(nn.functional.linear(h, p["Fc2.weight"], p["Fc2.bias"]));
            var logits = nn.functional.linear(h, p["Fc3.weight"], p["Fc3.bias"]);
            var logLikelihood = logits.log_softmax(1).gather(1, batch.Y.unsqueeze(1)).squeeze(1);
            return (logLikelihood.mean() + DiagNormal.LogProb(p, mean: 0, sd: 1) / N, logits.detach());
        };
    }

    /// <summary>The hand-written log posterior and its gradient.</summary>
    [Benchmark(Baseline = true)]
    public double HandWritten()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad(_handWritten, _parameters, _batch).Value.item<float>();
    }

    /// <summary>The generated log posterior and its gradient.</summary>
    [Benchmark]
    public double Generated()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad<(Tensor X, Tensor Y)>(_model.LogPosterior, _parameters, _batch).Value.item<float>();
    }

    /// <summary>The generated log posterior with the prior's gradient in closed form (what the samplers are given).</summary>
    [Benchmark]
    public double GeneratedFirstOrder()
    {
        using var scope = NewDisposeScope();
        return Autodiff.ValueAndGrad<(Tensor X, Tensor Y)>(_model.FirstOrderLogPosterior, _parameters, _batch).Value.item<float>();
    }
}
