using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Tests.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;
using Batch = (TorchSharp.torch.Tensor X, TorchSharp.torch.Tensor Y);

namespace Posteriors.Tests.Laplace;

public class MarginalLikelihoodTests
{
    private const double Sigma = 0.5, Delta = 0.7;

    private static ForwardModel<Batch> Through(nn.Module<Tensor, Tensor> module, OutputLikelihood likelihood) => new(
        (p, b) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new ModelOutput(module.call(b.X), wrt);
        },
        b => b.Y, likelihood);

    /// <summary>Bayesian linear regression at its MAP for prior precision <see cref="Delta"/>: the Laplace evidence is exact there.</summary>
    private static (KfacLaplaceState Kfac, DenseLaplaceState Dense, double Exact) Regression()
    {
        var data = TestModels.LinearData(1, OutputLikelihoodKind.Normal);
        var xt = cat(new[] { data.X, ones(TestModels.N, 1, dtype: float64) }, 1);
        var y = data.Y.reshape(-1, 1);
        var theta = linalg.solve(xt.t().mm(xt) / (Sigma * Sigma) + Delta * eye(11, dtype: float64), xt.t().mm(y) / (Sigma * Sigma));
        var module = nn.Linear(10, 1, dtype: float64);
        var p = ParameterTree.From(("weight", theta.narrow(0, 0, 10).t().contiguous()), ("bias", theta[10].clone()));
        var model = Through(module, OutputLikelihood.Normal(Sigma));
        var kfac = Kfac.Build(model, module, priorPrecision: Delta).Init(p);
        var dense = DenseGgn.Build(model, initPrecision: 0.0, module: module).Init(p);
        foreach (var batch in TestModels.Batches(data, 25))
        {
            kfac = Kfac.Build(model, module, priorPrecision: Delta).Update(kfac, batch, inplace: true);
            dense = DenseGgn.Build(model, initPrecision: 0.0, module: module).Update(dense, batch, inplace: true);
        }
        // y ~ N(0, σ² I + X̃ X̃ᵀ / δ).
        var cov = Sigma * Sigma * eye(TestModels.N, dtype: float64) + xt.mm(xt.t()) / Delta;
        var exact = -0.5 * (y.t().mm(linalg.solve(cov, y)).item<double>() + linalg.slogdet(cov).Item2.item<double>() + TestModels.N * Math.Log(2 * Math.PI));
        return (kfac, dense, exact);
    }

    [Test]
    public void TheLaplaceEvidenceOfLinearRegressionAtItsMapIsExactForKfacAndDense()
    {
        var (kfac, dense, exact) = Regression();
        var ll = kfac.LogLikelihoodSum.item<double>();
        Assert.That(MarginalLikelihood.LogEvidence(MarginalLikelihood.Groups(kfac), ll, new[] { Delta }), Is.EqualTo(exact).Within(1e-8 * Math.Abs(exact)));
        Assert.That(MarginalLikelihood.LogEvidence(MarginalLikelihood.Groups(dense), ll, new[] { Delta }), Is.EqualTo(exact).Within(1e-8 * Math.Abs(exact)));
        // Away from the MAP's own δ the formula is no longer the exact evidence, and it must notice: it changes with δ.
        Assert.That(MarginalLikelihood.LogEvidence(MarginalLikelihood.Groups(kfac), ll, new[] { 5 * Delta }), Is.Not.EqualTo(exact).Within(1e-3));
    }

    [Test]
    public void ThePriorPrecisionOfTheFitAndEvidenceIsTheOneOfTheBatchNormalisedLogPosteriorsPrior()
    {
        // The library's log posterior is mean log-likelihood + log prior / N (docs/ALGORITHMS.md §1). A MAP trained with
        // a N(0, δ⁻¹ I) prior that way (here: weight decay δ/N on the mean loss) is the mode for which the evidence with
        // priorPrecision δ is exact: the closed-form θ̂ of Regression() must be its stationary point.
        var data = TestModels.LinearData(1, OutputLikelihoodKind.Normal);
        var (kfac, _, _) = Regression();
        var module = nn.Linear(10, 1, dtype: float64);
        var model = Through(module, OutputLikelihood.Normal(Sigma));
        var logPosterior = model.LogPosterior(q => -0.5 * Delta * (q["weight"].square().sum() + q["bias"].square().sum()), TestModels.N);
        var atMode = Autodiff.ValueAndGrad(logPosterior, kfac.Params, data).Gradient.Flatten();
        var elsewhere = Autodiff.ValueAndGrad(logPosterior, kfac.Params.Map(t => t + 0.01), data).Gradient.Flatten();
        Assert.That(atMode.norm().item<double>(), Is.LessThan(1e-7 * elsewhere.norm().item<double>()));
        // With the prior counted N times over (δ on the mean loss instead of δ/N) the same θ̂ is not a mode.
        var overCounted = model.LogPosterior(q => -0.5 * Delta * TestModels.N * (q["weight"].square().sum() + q["bias"].square().sum()), TestModels.N);
        Assert.That(Autodiff.ValueAndGrad(overCounted, kfac.Params, data).Gradient.Flatten().norm().item<double>(), Is.GreaterThan(1e-3));
    }

    [Test]
    public void TuningFindsTheStationaryPointMacKaysFixedPointAlsoFinds()
    {
        var (kfac, _, _) = Regression();
        var groups = MarginalLikelihood.Groups(kfac);
        var ll = kfac.LogLikelihoodSum.item<double>();
        var tuned = MarginalLikelihood.Tune(groups, ll, initial: 10);
        var delta = tuned.PriorPrecision[0];
        // At the optimum δ ‖θ̂‖² = γ = Σ λ / (λ + δ), the effective number of parameters.
        var lambda = groups[0].CurvatureEigenvalues;
        var gamma = (lambda / (lambda + delta)).sum().item<double>();
        Assert.That(delta * groups[0].SquaredNorm, Is.EqualTo(gamma).Within(1e-4 * gamma));
        Assert.That(tuned.LogEvidence, Is.GreaterThan(MarginalLikelihood.LogEvidence(groups, ll, new[] { delta * 1.05 })));
        Assert.That(tuned.LogEvidence, Is.GreaterThan(MarginalLikelihood.LogEvidence(groups, ll, new[] { delta / 1.05 })));
    }

    [Test]
    public void PerLayerTuningIsAtLeastAsGoodAsOneScalarAndDiagonalStatesTuneToo()
    {
        manual_seed(21);
        var net = nn.Sequential(("hidden", nn.Linear(3, 6, dtype: float64)), ("act", nn.Tanh()), ("out", nn.Linear(6, 3, dtype: float64)));
        var g = new Generator(22);
        var x = randn(new long[] { 200, 3 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 200 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var p = ParameterTree.FromModule(net).Clone();
        var transform = Kfac.Build(model, net);
        var state = transform.Update(transform.Init(p), (x, y));
        var groups = MarginalLikelihood.Groups(state);
        Assert.That(groups.Select(gr => gr.Name), Is.EqualTo(new[] { "hidden", "out" }));
        var ll = state.LogLikelihoodSum.item<double>();
        var scalar = MarginalLikelihood.Tune(groups, ll);
        var perLayer = MarginalLikelihood.Tune(groups, ll, perGroup: true);
        Assert.That(perLayer.LogEvidence, Is.GreaterThanOrEqualTo(scalar.LogEvidence - 1e-6));
        Assert.That(perLayer.PriorPrecision[0], Is.Not.EqualTo(perLayer.PriorPrecision[1]).Within(1e-3));
        state.SetPriorPrecision(1, perLayer.PriorPrecision);
        Assert.That(state.PriorPrecision["out"].item<double>(), Is.EqualTo(perLayer.PriorPrecision[1]));

        var diag = DiagGgn.Build(model, initPrecision: 0.0, module: net);
        var diagState = diag.Update(diag.Init(p), (x, y));
        var diagGroups = MarginalLikelihood.Groups(diagState);
        Assert.That(diagGroups.Select(gr => gr.Count), Is.EqualTo(new long[] { 24, 21 }));
        var diagTuned = MarginalLikelihood.Tune(diagGroups, ll, perGroup: true);
        Assert.That(diagTuned.PriorPrecision.All(d => d > 0 && double.IsFinite(d)));
    }

    [Test]
    public void NonPositivePriorPrecisionsAreNamed()
    {
        var (kfac, _, _) = Regression();
        var groups = MarginalLikelihood.Groups(kfac);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MarginalLikelihood.LogEvidence(groups, 0, new[] { 0.0 }))!;
        Assert.That(e.ParamName, Is.EqualTo("priorPrecision"));
        Assert.That(e.Message, Does.Contain("group '.'"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => MarginalLikelihood.Tune(groups, 0, initial: -1))!.ParamName, Is.EqualTo("initial"));
        Assert.Throws<ArgumentOutOfRangeException>(() => MarginalLikelihood.ValidationGrid(new[] { 1.0, double.NaN }, _ => 0));
        var (best, grid) = MarginalLikelihood.ValidationGrid(new[] { 0.1, 1, 10 }, d => Math.Abs(Math.Log10(d) - 0.2));
        Assert.That(best, Is.EqualTo(1));
        Assert.That(grid, Has.Count.EqualTo(3));
    }
}
