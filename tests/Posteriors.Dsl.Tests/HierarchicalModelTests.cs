using Posteriors.Diagnostics;
using Posteriors.Dsl.Tests.Models;
using Posteriors.Ensembles;
using Posteriors.Models.Hierarchical;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests;

/// <summary>Priors whose arguments name other parameters or [Hyper] members, against hand computations and a sampler.</summary>
public class HierarchicalModelTests
{
    private static readonly double Log2Pi = Math.Log(2 * Math.PI);

    [Test]
    public void CentredEightSchoolsMatchesTheHandWrittenLogPosterior()
    {
        // Written with no hand-written term: θ ~ N(μ, τ) with μ, τ parameters.
        var model = new EightSchoolsCentred { DatasetSize = 8 };
        var at = model.SamplePrior(new Generator(3));
        LogPosterior<(Tensor Y, Tensor Sigma)> byHand = (p, b) =>
        {
            var (mu, u, theta) = (p["Mu"], p["log_Tau"], p["Theta"]);
            var tau = u.exp();
            var ll = -0.5 * ((b.Y - theta) / b.Sigma).square() - b.Sigma.log() - 0.5 * Log2Pi;
            var prior = (-0.5 * (mu / 5).square() - Math.Log(5) - 0.5 * Log2Pi).sum()
                        + (Math.Log(2 / Math.PI) - Math.Log(5) - (tau / 5).square().log1p() + u).sum()     // HalfCauchy(5) + Jacobian
                        + (-0.5 * ((theta - mu) / tau).square() - tau.log() - 0.5 * Log2Pi).sum();         // N(μ, τ), broadcast
            return ll.mean() + prior / 8;
        };
        var batch = EightSchools.Batch();
        var a = Autodiff.ValueAndGrad(model.LogPosterior, at, batch);
        var b = Autodiff.ValueAndGrad(byHand, at, batch);
        Assert.That(a.Value.item<double>(), Is.EqualTo(b.Value.item<double>()).Within(1e-9));
        for (var i = 0; i < a.Gradient.Count; i++)
            Assert.That((a.Gradient.Leaves[i] - b.Gradient.Leaves[i]).abs().max().item<double>(), Is.LessThan(1e-9), a.Gradient.Names[i]);
    }

    [Test]
    public void SamplePriorDrawsChildrenGivenTheirParents()
    {
        // Each draw: θ's 4,000 elements ~ N(μ, τ) for that draw's μ and τ (ancestral sampling), so their mean is within
        // 5 τ/√4000 of μ and their sd within 5 % of τ; across draws μ varies (sd 5), so a non-ancestral draw would fail.
        var model = new Ancestral();
        var mus = new List<double>();
        for (ulong seed = 1; seed <= 20; seed++)
        {
            var draw = model.Constrain(model.SamplePrior(new Generator(seed)));
            var (mu, tau, theta) = (draw["Mu"].item<double>(), draw["Tau"].item<double>(), draw["Theta"]);
            Assert.That(theta.mean().item<double>(), Is.EqualTo(mu).Within(5 * tau / Math.Sqrt(4000)), $"seed {seed}");
            Assert.That(theta.std().item<double>(), Is.EqualTo(tau).Within(0.05 * tau), $"seed {seed}");
            mus.Add(mu);
        }
        Assert.That(mus.Max() - mus.Min(), Is.GreaterThan(5));
    }

    [Test]
    public void HyperparametersChangeTheLogPriorWithoutRecompiling()
    {
        var model = new HyperRegression();
        var at = model.SamplePrior(new Generator(5));
        double ByHand(double priorScale, Tensor featureScale, double rate)
        {
            var (w, bias, u) = (at["Weight"], at["Bias"], at["log_NoiseScale"]);
            var normal = (-0.5 * (w / featureScale).square() - featureScale.log() - 0.5 * Log2Pi).sum();
            var laplace = (-(bias - 0.5).abs() / priorScale - Math.Log(2 * priorScale)).sum();
            var exponential = (Math.Log(rate) - rate * u.exp() + u).sum();
            return (normal + laplace + exponential).item<double>();
        }
        Assert.That(model.LogPrior(at).item<double>(), Is.EqualTo(ByHand(1, model.FeatureScale, 3)).Within(1e-9));

        // A prior-scale sweep: the same instance, new values, new log prior.
        foreach (var scale in new[] { 0.1, 10.0 })
        {
            model.PriorScale = scale;
            model.FeatureScale = full(3, scale, dtype: ScalarType.Float64);
            model.NoiseRate = 1 / scale;
            Assert.That(model.LogPrior(at).item<double>(), Is.EqualTo(ByHand(scale, model.FeatureScale, 1 / scale)).Within(1e-9), $"scale {scale}");
        }

        // A constant hyperparameter is checked like a constant in the attribute.
        model.PriorScale = -1;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.LogPrior(at));
        Assert.That(e!.ParamName, Is.EqualTo("scale"));
    }

    [Test]
    public void NonCentredEightSchoolsPosteriorMeansMatchQuadrature()
    {
        // 8 BAOA chains from prior draws, full batch at T = 1/N. The tolerance is 4 Monte Carlo standard errors
        // (sd / √ESS) plus 0.15 for the integrator's step-size bias (measured: under 0.1 at lr 0.5).
        var exact = EightSchools.PosteriorMeansByQuadrature();
        var model = new EightSchoolsNonCentred { DatasetSize = 8 };
        var sampler = Baoa.Build(ParallelChains.Sum<(Tensor, Tensor)>(model.LogPosterior), lr: 0.5, alpha: 0.3,
            temperature: 1.0 / 8, momenta: InitialMomenta.Zero);
        var state = sampler.Init(ParallelChains.Initialise(8, k => model.SamplePrior(new Generator((ulong)(100 + k)))), seed: 7);
        var batch = EightSchools.Batch();
        var (mu, tau) = (new List<Tensor>(), new List<Tensor>());
        for (var step = 0; step < 3000; step++)
        {
            using var scope = NewDisposeScope();
            state = sampler.Update(state, batch, inplace: true);
            if (step < 750 || step % 5 != 0) continue;
            var constrained = model.Constrain(state.Params);
            mu.Add(constrained["Mu"].squeeze(1).clone().MoveToOuterDisposeScope());
            tau.Add(constrained["Tau"].squeeze(1).clone().MoveToOuterDisposeScope());
        }
        foreach (var (name, draws, truth) in new[] { ("μ", stack(mu.ToArray(), 1), exact.Mu), ("τ", stack(tau.ToArray(), 1), exact.Tau) })
        {
            var chains = Convergence.Chains(draws);
            var ess = Convergence.EffectiveSampleSize(chains);
            var sd = draws.std().item<double>();
            var tolerance = 4 * sd / Math.Sqrt(ess) + 0.15;
            Assert.That(draws.mean().item<double>(), Is.EqualTo(truth).Within(tolerance), $"{name}: ESS {ess:F0}");
        }
        Assert.That(exact.Mu, Is.EqualTo(4.4).Within(0.05), "quadrature: μ");
        Assert.That(exact.Tau, Is.EqualTo(3.6).Within(0.05), "quadrature: τ");
    }
}
