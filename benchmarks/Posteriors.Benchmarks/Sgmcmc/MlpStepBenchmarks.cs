using BenchmarkDotNet.Attributes;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Sgmcmc;

/// <summary>
/// One sampler step on an MLP 784-512-512-10 (669,706 parameters), batch 128, CPU, one thread, against one forward+backward
/// of the same likelihood (the baseline: the gradient every step needs). Also that gradient plus one torch normal draw per
/// parameter (what a step cost at least before the Philox noise), and a hand-written TorchSharp SGD-momentum step
/// (module, backward, optim.SGD) for the ratio Python posteriors reports as 2.5×.
/// Goals: SghmcStep, SgldStep and BaoaStep ÷ baseline ≤ 1.25; SghmcStep ÷ TorchSgdMomentumStep well under 2.5.
/// </summary>
/// <remarks>The baseline is declared last: BenchmarkDotNet runs methods in declaration order, and on a shared machine the
/// first one measured was consistently penalised.</remarks>
[MemoryDiagnoser]
public class MlpStepBenchmarks
{
    internal const int Batch = 128;
    private Sequential _module = null!;
    private ParameterTree _values = null!;
    private Tensor _x = null!, _y = null!;
    private Tensor[] _leaves = null!;
    private Generator _generator = null!;
    private optim.Optimizer _sgd = null!;
    private Sghmc<(Tensor X, Tensor Y)> _functional = null!, _bound = null!;
    private SghmcState _functionalState = null!, _boundState = null!;
    private Sgld<(Tensor X, Tensor Y)> _sgld = null!;
    private SgldState _sgldState = null!;
    private Baoa<(Tensor X, Tensor Y)> _baoa = null!;
    private BaoaState _baoaState = null!;

    internal static Sequential Mlp() => nn.Sequential(("fc1", nn.Linear(784, 512)), ("act1", nn.ReLU()),
        ("fc2", nn.Linear(512, 512)), ("act2", nn.ReLU()), ("fc3", nn.Linear(512, 10)));

    internal static Tensor Logits(ParameterTree p, Tensor x)
    {
        var h = nn.functional.relu(nn.functional.linear(x, p["fc1.weight"], p["fc1.bias"]));
        h = nn.functional.relu(nn.functional.linear(h, p["fc2.weight"], p["fc2.bias"]));
        return nn.functional.linear(h, p["fc3.weight"], p["fc3.bias"]);
    }

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(0);
        _module = Mlp();
        _values = ParameterTree.FromModule(_module).Map(t => t.detach().clone());
        _leaves = _values.Leaves.Select(t => t.clone()).ToArray();
        _x = randn(Batch, 784);
        _y = randint(0, 10, new long[] { Batch });
        _generator = new Generator(1);
        _sgd = optim.SGD(_module.parameters(), 1e-2, momentum: 0.9, dampening: 0.9);

        LogPosterior<(Tensor X, Tensor Y)> functional = (p, b) => -nn.functional.cross_entropy(Logits(p, b.X), b.Y);
        LogPosterior<(Tensor X, Tensor Y)> bound = (p, b) =>
        {
            var wrt = ModuleBinding.Bind(_module, p);
            return new LogDensityResult(-nn.functional.cross_entropy(_module.call(b.X), b.Y), wrt: wrt);
        };
        _functional = Sghmc.Build(functional, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000);
        _bound = Sghmc.Build(bound, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000);
        _sgld = Sgld.Build(functional, 1e-3, temperature: 1.0 / 60_000);
        _baoa = Baoa.Build(functional, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000);
        _functionalState = _functional.Init(_values, seed: 1);
        _sgldState = _sgld.Init(_values, seed: 3);
        _baoaState = _baoa.Init(_values, seed: 4);
        _boundState = _bound.Init(_values, seed: 2);
    }

    /// <summary>A hand-written TorchSharp training step: module forward, backward, SGD with momentum and dampening.</summary>
    [Benchmark]
    public void TorchSgdMomentumStep()
    {
        using var scope = NewDisposeScope();
        _sgd.zero_grad();
        nn.functional.cross_entropy(_module.call(_x), _y).backward();
        _sgd.step();
    }

    /// <summary>One SGHMC step (T = 1/N) through a functional log posterior.</summary>
    [Benchmark]
    public void SghmcStep()
    {
        using var scope = NewDisposeScope();
        _functional.Update(_functionalState, (_x, _y), inplace: true);
    }

    /// <summary>One SGLD step (T = 1/N).</summary>
    [Benchmark]
    public void SgldStep()
    {
        using var scope = NewDisposeScope();
        _sgld.Update(_sgldState, (_x, _y), inplace: true);
    }

    /// <summary>One BAOA step (T = 1/N).</summary>
    [Benchmark]
    public void BaoaStep()
    {
        using var scope = NewDisposeScope();
        _baoa.Update(_baoaState, (_x, _y), inplace: true);
    }

    /// <summary>One SGHMC step evaluating the TorchSharp module through ModuleBinding.</summary>
    [Benchmark]
    public void SghmcStepModuleBound()
    {
        using var scope = NewDisposeScope();
        _bound.Update(_boundState, (_x, _y), inplace: true);
    }

    /// <summary>The gradient plus a torch normal draw for every parameter: the floor of a step before the Philox noise.</summary>
    [Benchmark]
    public void ForwardBackwardPlusTorchNormals()
    {
        using var scope = NewDisposeScope();
        foreach (var t in Gradient()) randn(t.shape, generator: _generator);
    }

    /// <summary>What every step needs: one forward and one backward pass of the same likelihood.</summary>
    [Benchmark(Baseline = true)]
    public void ForwardBackward()
    {
        using var scope = NewDisposeScope();
        Gradient();
    }

    private IList<Tensor> Gradient()
    {
        var leaves = _leaves.Select(t => t.detach().requires_grad_(true)).ToArray();
        var p = new ParameterTree(_values.Names.Zip(leaves, (n, t) => new KeyValuePair<string, Tensor>(n, t)));
        var loss = nn.functional.cross_entropy(Logits(p, _x), _y);
        return autograd.grad(new[] { loss }, leaves);
    }
}
