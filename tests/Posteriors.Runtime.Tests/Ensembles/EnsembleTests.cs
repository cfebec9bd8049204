using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using Posteriors.Testing;
using Posteriors.Tests.Sgmcmc;
using Posteriors.Traces;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Ensembles;

public class EnsembleTests
{
    /// <summary>
    /// Bayesian linear regression y = X w + noise (sd s), prior w ~ N(0, s₀² I): the posterior is N(Λ⁻¹ Xᵀy / s², Λ⁻¹) with
    /// Λ = XᵀX / s² + I / s₀². The unbiased deep ensemble (parallel SGHMC at T = 1/N, final states kept) must match it.
    /// </summary>
    [Test]
    public void UnbiasedDeepEnsembleMatchesTheConjugatePosterior()
    {
        const int n = 200, d = 3, members = 2000;
        const double s = 0.5, s0 = 1.0;
        var g = new Generator(21);
        var x = randn(new long[] { n, d }, dtype: ScalarType.Float64, generator: g);
        var y = x.matmul(tensor(new[] { 1.0, -0.5, 0.25 })) + s * randn(new long[] { n }, dtype: ScalarType.Float64, generator: g);
        var precision = x.t().matmul(x) / (s * s) + eye(d, dtype: ScalarType.Float64) / (s0 * s0);
        var covariance = linalg.inv(precision);
        var mean = covariance.matmul(x.t().matmul(y)) / (s * s);

        // Stacked, batch-normalised log posterior: Σₖ [mean_i log N(yᵢ; xᵢ·wₖ, s²) + log N(wₖ; 0, s₀²)/N].
        LogPosterior<object?> stacked = (p, _) =>
        {
            var w = p["w"];                                               // [K, d]
            var residual = y.unsqueeze(0) - w.matmul(x.t());              // [K, n]
            return (residual.square().mean(new long[] { 1 }) * (-0.5 / (s * s))).sum() + w.square().sum() * (-0.5 / (s0 * s0) / n);
        };
        // A stacked log posterior needs no ensemble: SGHMC is elementwise, so it moves all K chains of the stacked tree at
        // once (one noise draw per leaf, rows independent). Zero initial momenta and T = 1/N: the unbiased deep ensemble.
        var ensemble = Sghmc.Build(stacked, lr: 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / n, momenta: InitialMomenta.Zero);
        var state = ensemble.Init(ParallelChains.Initialise(members, k => ParameterTree.From(("w", randn(new long[] { d }, dtype: ScalarType.Float64, generator: g) * 3))), seed: 3);
        for (var t = 0; t < 400; t++)
        {
            using var scope = NewDisposeScope();
            state = ensemble.Update(state, null, inplace: true);
        }

        using var moments = new RunningMoments(fullCovariance: true);
        moments.AddRows(ParallelChains.Rows(state.Params));
        // K = 2,000 independent members: SE(mean_i) = sqrt(Σii/K), SE(Σij) = sqrt((Σii Σjj + Σij²)/K); allow 5 SE for the mean.
        // The covariance gets 5 SE plus 10% of Σ for SGHMC's discretisation bias at this step size (ε λmax σ⁻²/α ≈ 0.05).
        var diag = covariance.diagonal();
        var seMean = (diag / members).sqrt();
        var seCov = ((diag.outer(diag) + covariance.square()) / members).sqrt();
        var meanError = (moments.Mean - mean).abs();
        var covError = (moments.Covariance - covariance).abs();
        TestContext.Out.WriteLine($"|Δmean|/SE {(meanError / seMean).Str()}  |ΔΣ|/Σ {(covError / covariance.abs()).Str()}");
        Assert.That((meanError <= 5 * seMean).all().item<bool>(), Is.True, $"mean {moments.Mean.Str()} vs {mean.Str()}");
        Assert.That((covError <= 5 * seCov + 0.1 * covariance.abs()).all().item<bool>(), Is.True,
            $"covariance {moments.Covariance.Str()} vs {covariance.Str()}");
        // At T = 0 (the plain deep ensemble) every member collapses onto the mode instead.
        var deep = Sghmc.Build(stacked, lr: 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 0.0, momenta: InitialMomenta.Zero);
        var deepState = deep.Init(ParallelChains.Member(state.Params, 0).Map(t => t.unsqueeze(0).repeat(4, 1)).Map(t => t + randn_like(t)));
        for (var t = 0; t < 400; t++) deepState = deep.Update(deepState, null, inplace: true);
        var mode = linalg.solve(precision, x.t().matmul(y) / (s * s));
        Assert.That((deepState.Params["w"] - mode).abs().max().item<double>(), Is.LessThan(1e-6));
    }

    /// <summary>
    /// The single-member log posterior lifted by ParallelChains.Sum gives every chain its own gradient, whether the member
    /// is plain tensor code or evaluates a TorchSharp module bound with ModuleBinding (differentiated chain by chain).
    /// </summary>
    [Test]
    public void SumLiftsPlainAndModuleBoundLogPosteriorsToStackedChains()
    {
        manual_seed(5);
        var module = nn.Sequential(("fc1", nn.Linear(3, 4)), ("act", nn.Tanh()), ("fc2", nn.Linear(4, 1)));
        var x = randn(6, 3);
        var y = randn(6, 1);
        var template = ParameterTree.FromModule(module);
        var stacked = ParallelChains.Initialise(3, k => template.Map(t => t.detach() + 0.1 * (k + 1) * randn_like(t)));

        LogPosterior<Tensor> functional = (p, batch) =>
        {
            var h = nn.functional.linear(batch, p["fc1.weight"], p["fc1.bias"]).tanh();
            return -(nn.functional.linear(h, p["fc2.weight"], p["fc2.bias"]) - y).square().mean();
        };
        LogPosterior<Tensor> viaModule = (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            var output = ((nn.Module<Tensor, Tensor>)module).call(batch);
            return new LogDensityResult(-(output - y).square().mean(), output, wrt);
        };

        var a = Autodiff.ValueAndGrad(ParallelChains.Sum(functional), stacked, x);
        var b = Autodiff.ValueAndGrad(ParallelChains.Sum(viaModule), stacked, x);
        Assert.That(b.Aux!.shape, Is.EqualTo(new long[] { 3, 6, 1 }));
        double expected = 0;
        for (var k = 0; k < 3; k++)
        {
            var single = Autodiff.ValueAndGrad(functional, ParallelChains.Member(stacked, k), x);
            expected += single.Value.item<float>();
            for (var i = 0; i < template.Count; i++)
            {
                TensorAssert.Close(a.Gradient.Leaves[i][k], single.Gradient.Leaves[i], 1e-5, 1e-6, $"plain, chain {k}, {template.Names[i]}");
                TensorAssert.Finite(a.Gradient.Leaves[i][k], $"plain, chain {k}, {template.Names[i]}");
                TensorAssert.Close(b.Gradient.Leaves[i][k], single.Gradient.Leaves[i], 1e-5, 1e-6, $"module, chain {k}, {template.Names[i]}");
                TensorAssert.Finite(b.Gradient.Leaves[i][k], $"module, chain {k}, {template.Names[i]}");
            }
        }
        Assert.That(a.Value.item<float>(), Is.EqualTo(expected).Within(1e-5));
        Assert.That(b.Value.item<float>(), Is.EqualTo(expected).Within(1e-5));

        // And a deep ensemble of that module runs: every member's loss goes down.
        var ensemble = Ensemble.Deep(viaModule, lr: 0.1, alpha: 10, sigma: Math.Sqrt(10));
        var state = ensemble.Init(stacked);
        for (var t = 0; t < 200; t++) state = ensemble.Update(state, x, inplace: true);
        foreach (var (member, k) in Ensemble<Tensor>.Members(state).Select((m, k) => (m, k)))
            Assert.That(functional(member, x).Value.item<float>(), Is.GreaterThan(functional(ParallelChains.Member(stacked, k), x).Value.item<float>()));
    }

    /// <summary>
    /// With a per-member log posterior the ensemble advances chain k exactly as a single SGHMC chain from the same start:
    /// bit-identical for chain 0 (stream 0 is the single chain's stream), at T = 0 for every chain; at T &gt; 0 chains
    /// from one start separate because each has its own noise stream. In-place and copying updates agree bit for bit.
    /// </summary>
    [Test]
    public void PerMemberEnsembleStepsEachChainAsItsOwnSghmcRun()
    {
        manual_seed(8);
        var x = randn(16, 3);
        var y = randn(16);
        LogPosterior<Tensor> perMember = (p, batch) => -(batch.matmul(p["w"]) + p["b"] - y).square().mean() - p["w"].square().sum() / 32;
        var start = ParameterTree.From(("w", randn(3)), ("b", randn(1)));
        var others = ParallelChains.Initialise(3, k => start.Map(t => t + 0.5 * (k + 1)));

        foreach (var temperature in new[] { 0.0, 0.05 })
        {
            var ensemble = Ensemble.Build(perMember, lr: 0.05, alpha: 2, sigma: 1, temperature: temperature);
            var single = Sghmc.Build(perMember, lr: 0.05, alpha: 2, sigma: 1, temperature: temperature, momenta: InitialMomenta.Zero);
            var stacked = ParallelChains.Initialise(4, k => k == 0 ? start.Clone() : ParallelChains.Member(others, k - 1).Clone());
            var inPlace = ensemble.Init(stacked, seed: 11);
            var copying = ensemble.Init(stacked, seed: 11);
            var chains = Enumerable.Range(0, 4).Select(k => single.Init(ParallelChains.Member(stacked, k), seed: 11)).ToArray();
            for (var t = 0; t < 30; t++)
            {
                inPlace = ensemble.Update(inPlace, x, inplace: true);
                copying = ensemble.Update(copying, x, inplace: false);
                for (var k = 0; k < 4; k++) chains[k] = single.Update(chains[k], x, inplace: true);
            }
            Assert.That(copying.Params["w"].Same(inPlace.Params["w"]), Is.True, $"T = {temperature}: copying vs in place");
            Assert.That(inPlace.Step, Is.EqualTo(30));
            if (temperature == 0)
                Assert.That(inPlace.LogPosterior.item<float>(), Is.EqualTo(chains.Sum(c => c.LogPosterior.item<float>())).Within(1e-4),
                    "the ensemble's log posterior is Σₖ log π(θₖ)");
            for (var k = 0; k < 4; k++)
            {
                var member = ParallelChains.Member(inPlace.Params, k);
                var same = member["w"].Same(chains[k].Params["w"]) && member["b"].Same(chains[k].Params["b"]);
                Assert.That(same, Is.EqualTo(k == 0 || temperature == 0), $"T = {temperature}, chain {k} vs its own run");
            }
        }

        // Two chains from one start at T > 0 move apart: independent noise streams.
        var hot = Ensemble.Build(perMember, lr: 0.05, alpha: 2, sigma: 1, temperature: 0.05);
        var twins = hot.Init(ParallelChains.Stack(new[] { start, start }), seed: 4);
        twins = hot.Update(twins, x);
        Assert.That(twins.Momenta["w"][0].Same(twins.Momenta["w"][1]), Is.False, "the momenta carry the first step's noise");
    }

    [Test]
    public void PerMemberEnsembleNamesTheChainWhoseGradientIsNotFinite()
    {
        LogPosterior<object?> perMember = (p, _) => -(p["w"].log()).sum();
        var ensemble = Ensemble.Deep(perMember, lr: 0.1);
        var state = ensemble.Init(ParallelChains.Stack(new[] { ParameterTree.From(("w", ones(2))), ParameterTree.From(("w", tensor(new[] { 1f, -1f }))) }));
        var e = Assert.Throws<NonFiniteException>(() => ensemble.Update(state, null))!;
        Assert.That(e.Message, Does.StartWith("Chain 1:"));
        Assert.That(e.Step, Is.EqualTo(0));
    }

    [Test]
    public void StackingChecksStructureAndCounts()
    {
        var a = ParameterTree.From(("w", zeros(2)));
        var b = ParameterTree.From(("w", zeros(3)));
        Assert.That(Assert.Throws<ArgumentException>(() => ParallelChains.Stack(new[] { a, b }))!.Message, Does.Contain("'w'"));
        var stacked = ParallelChains.Stack(new[] { a, a, a });
        Assert.That(ParallelChains.Count(stacked), Is.EqualTo(3));
        Assert.That(ParallelChains.Rows(stacked).shape, Is.EqualTo(new long[] { 3, 2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ParallelChains.Member(stacked, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ensemble.Unbiased<object?>((p, _) => p["w"].sum(), 0, 0.1));
    }
}
