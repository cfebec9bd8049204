using Posteriors.Dsl.Tests.Models;
using Posteriors.Modeling;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests.Modeling;

/// <summary>The constraint bijectors (against autograd Jacobians) and a model that uses every constraint.</summary>
public class ConstraintTests
{
    private static Tensor T(params double[] v) => tensor(v, dtype: ScalarType.Float64);

    /// <summary>log |det J| of u ↦ <paramref name="map"/>(u) restricted to the output coordinates <paramref name="keep"/>, by autograd.</summary>
    private static double AutogradLogDet(Func<Tensor, Tensor> map, Tensor u, Func<Tensor, Tensor> keep)
    {
        var n = u.shape[0];
        var rows = new List<Tensor>();
        for (var i = 0; i < n; i++)
        {
            var x = u.detach().clone().requires_grad_(true);
            var y = keep(map(x)).reshape(-1)[i];
            rows.Add(autograd.grad(new[] { y }, new[] { x })[0]);
        }
        var (_, logAbsDet) = linalg.slogdet(stack(rows.ToArray()));
        return logAbsDet.item<double>();
    }

    [Test]
    public void LogDetJacobiansMatchAutograd()
    {
        var u = T(0.3, -1.2, 0.8);
        Assert.That(Bijectors.IntervalLogDetJacobian(u, -1, 3).item<double>(),
            Is.EqualTo(AutogradLogDet(x => Bijectors.IntervalForward(x, -1, 3), u, y => y)).Within(1e-10));
        Assert.That(Bijectors.OrderedLogDetJacobian(u).item<double>(),
            Is.EqualTo(AutogradLogDet(Bijectors.OrderedForward, u, y => y)).Within(1e-10));
        // The simplex has K − 1 free coordinates: the density is with respect to the first K − 1.
        Assert.That(Bijectors.SimplexLogDetJacobian(u).item<double>(),
            Is.EqualTo(AutogradLogDet(Bijectors.SimplexForward, u, y => y.narrow(0, 0, 3))).Within(1e-10));
        // A 3 × 3 correlation factor has 3 free entries: those below the diagonal.
        var lower = tensor(new long[] { 3, 6, 7 });
        Assert.That(Bijectors.CholeskyCorrelationLogDetJacobian(u).item<double>(),
            Is.EqualTo(AutogradLogDet(Bijectors.CholeskyCorrelationForward, u, y => y.reshape(-1).index_select(0, lower))).Within(1e-10));
    }

    [Test]
    public void MapsLandInTheirSetsAndInvert()
    {
        var u = T(0.3, -1.2, 0.8);
        var interval = Bijectors.IntervalForward(u, -1, 3);
        Assert.That((interval > -1).all().item<bool>() && (interval < 3).all().item<bool>(), Is.True);
        Assert.That((Bijectors.IntervalInverse(interval, -1, 3) - u).abs().max().item<double>(), Is.LessThan(1e-12));
        var simplex = Bijectors.SimplexForward(u);
        Assert.That(simplex.sum().item<double>(), Is.EqualTo(1).Within(1e-12));
        Assert.That((simplex > 0).all().item<bool>(), Is.True);
        Assert.That((Bijectors.SimplexInverse(simplex) - u).abs().max().item<double>(), Is.LessThan(1e-12));
        Assert.That((Bijectors.SimplexForward(zeros(3, dtype: ScalarType.Float64)) - 0.25).abs().max().item<double>(), Is.LessThan(1e-12), "u = 0 is the centre");
        var ordered = Bijectors.OrderedForward(u);
        Assert.That((ordered.diff() > 0).all().item<bool>(), Is.True);
        Assert.That((Bijectors.OrderedInverse(ordered) - u).abs().max().item<double>(), Is.LessThan(1e-12));
        var l = Bijectors.CholeskyCorrelationForward(u);
        var r = l.matmul(l.t());
        Assert.That((r.diagonal() - 1).abs().max().item<double>(), Is.LessThan(1e-12), "unit diagonal");
        Assert.That((l.triu(1)).abs().max().item<double>(), Is.EqualTo(0), "lower triangular");
        Assert.That(linalg.eigvalsh(r).min().item<double>(), Is.GreaterThan(0), "positive definite");
        Assert.That((Bijectors.CholeskyCorrelationInverse(l) - u).abs().max().item<double>(), Is.LessThan(1e-10));
    }

    [Test]
    public void BoundedSupportPriorsMatchTheirDensities()
    {
        var x = T(0.2, 0.7);
        Assert.That(Priors.LogProb(x, Distribution.Uniform, low: -1, high: 3).item<double>(), Is.EqualTo(-2 * Math.Log(4)).Within(1e-12));
        // Beta(2, 5): 30 x (1 − x)⁴
        var beta = (Math.Log(30) + Math.Log(0.2) + 4 * Math.Log(0.8)) + (Math.Log(30) + Math.Log(0.7) + 4 * Math.Log(0.3));
        Assert.That(Priors.LogProb(x, Distribution.Beta, alpha: 2, beta: 5).item<double>(), Is.EqualTo(beta).Within(1e-12));
        // Dirichlet(2, 2, 2) at (0.2, 0.3, 0.5): Γ(6)/Γ(2)³ · 0.2 · 0.3 · 0.5
        var dirichlet = Math.Log(120) + Math.Log(0.2 * 0.3 * 0.5);
        Assert.That(Priors.LogProb(T(0.2, 0.3, 0.5), Distribution.Dirichlet, concentration: 2).item<double>(), Is.EqualTo(dirichlet).Within(1e-12));
        // LKJ(η) on L (K = 3): Σ_{k=2..3} (K − k + 2η − 2) log L_kk − log c₃(η), with (Lewandowski, Kurowicka & Joe)
        // c₃(η) = 2^{2(2η)} B(η + ½, η + ½)² · 2^{2η − 1} B(η, η); at η = 2.5: 2^10 B(3, 3)² · 2^4 B(2.5, 2.5).
        var l = Bijectors.CholeskyCorrelationForward(T(0.3, -1.2, 0.8));
        var logBeta33 = Math.Log(1.0 / 30);                                             // Γ(3)²/Γ(6) = 4/120
        var logBeta2525 = 2 * T(2.5).lgamma().item<double>() - Math.Log(24);              // Γ(2.5)²/Γ(5)
        var logC = 10 * Math.Log(2) + 2 * logBeta33 + 4 * Math.Log(2) + logBeta2525;
        var lkj = (3 - 2 + 2 * 2.5 - 2) * Math.Log(l[1, 1].item<double>()) + (3 - 3 + 2 * 2.5 - 2) * Math.Log(l[2, 2].item<double>()) - logC;
        Assert.That(Priors.LogProb(l, Distribution.LkjCholesky, concentration: 2.5).item<double>(), Is.EqualTo(lkj).Within(1e-12));
    }

    [Test]
    public void LkjInTwoDimensionsIsAStretchedBetaOnTheCorrelation()
    {
        // K = 2: L = [[1, 0], [r, √(1 − r²)]] and LKJ(η) on r is Beta(η, η) on (r + 1)/2, stretched onto (−1, 1).
        foreach (var eta in new[] { 0.7, 1.0, 1.5, 3.0 })
        {
            var beta = distributions.Beta(T(eta), T(eta));
            foreach (var r in new[] { -0.9, -0.3, 0.0, 0.45, 0.8 })
            {
                var l = T(1, 0, r, Math.Sqrt(1 - r * r)).reshape(2, 2);
                var expected = beta.log_prob(T((r + 1) / 2)).item<double>() - Math.Log(2);
                Assert.That(Priors.LogProb(l, Distribution.LkjCholesky, concentration: eta).item<double>(), Is.EqualTo(expected).Within(1e-10), $"η = {eta}, r = {r}");
            }
            if (eta < 1) continue; // the density is unbounded at ±1 below η = 1
            // and it integrates to one (trapezoid rule on a fine grid)
            const int points = 4001;
            double integral = 0;
            for (var i = 0; i < points; i++)
            {
                var r = -1 + 2.0 * i / (points - 1);
                var l = T(1, 0, r, Math.Sqrt(Math.Max(0, 1 - r * r))).reshape(2, 2);
                var density = i is 0 or points - 1 ? (eta == 1 ? 0.5 : 0) : Math.Exp(Priors.LogProb(l, Distribution.LkjCholesky, concentration: eta).item<double>());
                integral += density * (i is 0 or points - 1 ? 0.5 : 1) * 2.0 / (points - 1);
            }
            Assert.That(integral, Is.EqualTo(1).Within(1e-4), $"∫ p(r) dr at η = {eta}");
        }
    }

    [Test]
    public void LkjIsNormalisedInEveryDimensionThroughItsPartialCorrelations()
    {
        // In the unconstrained coordinates u (z = tanh u, the canonical partial correlations), LKJ(η) makes the z's
        // independent, the one in column j (0-based) a Beta(βⱼ, βⱼ) on (z + 1)/2 with βⱼ = η + (K − 2 − j)/2: the
        // normalised prior plus the bijector's log-Jacobian must equal that product of Beta densities times dz/du.
        foreach (var (k, eta) in new[] { (3L, 2.5), (4L, 0.8), (5L, 1.0) })
        {
            var u = randn(Bijectors.CholeskyCorrelationSize(k), dtype: ScalarType.Float64, generator: new Generator(11));
            var z = u.tanh();
            var expected = 0.0;
            var index = 0;
            for (var i = 1; i < k; i++)
                for (var j = 0; j < i; j++, index++)
                {
                    var b = eta + (k - 2 - j) / 2.0;
                    var zij = z[index].item<double>();
                    expected += distributions.Beta(T(b), T(b)).log_prob(T((zij + 1) / 2)).item<double>() - Math.Log(2) + Math.Log(1 - zij * zij);
                }
            var l = Bijectors.CholeskyCorrelationForward(u);
            var actual = Priors.LogProb(l, Distribution.LkjCholesky, concentration: eta) + Bijectors.CholeskyCorrelationLogDetJacobian(u);
            Assert.That(actual.item<double>(), Is.EqualTo(expected).Within(1e-9), $"K = {k}, η = {eta}");
        }
    }

    [Test]
    public void BoundedSupportDrawsHaveTheRightMoments()
    {
        const int n = 20_000;
        var like = zeros(n, dtype: ScalarType.Float64);
        // Tolerances: 5 standard errors.
        var uniform = Priors.Sample(like, Distribution.Uniform, low: -1, high: 3, generator: new Generator(1));
        Assert.That(uniform.mean().item<double>(), Is.EqualTo(1).Within(5 * (4 / Math.Sqrt(12)) / Math.Sqrt(n)));
        var beta = Priors.Sample(like, Distribution.Beta, alpha: 2, beta: 5, generator: new Generator(2));
        Assert.That(beta.mean().item<double>(), Is.EqualTo(2.0 / 7).Within(5 * Math.Sqrt(10.0 / (49 * 8)) / Math.Sqrt(n)));
        var dirichlet = Priors.Sample(zeros(n, 4, dtype: ScalarType.Float64), Distribution.Dirichlet, concentration: 2, generator: new Generator(3));
        Assert.That((dirichlet.sum(1) - 1).abs().max().item<double>(), Is.LessThan(1e-12));
        // Each coordinate ~ Beta(2, 6): mean 1/4, sd √(12/(64·9)).
        Assert.That((dirichlet.mean(new long[] { 0 }) - 0.25).abs().max().item<double>(), Is.LessThan(5 * Math.Sqrt(12.0 / 576) / Math.Sqrt(n)));

        // LKJ(η = 2), K = 3: every correlation has variance 1/(2η + K − 1) = 1/6 and mean 0.
        var r10 = new double[2000];
        var r21 = new double[2000];
        var g = new Generator(4);
        var eye3 = eye(3, dtype: ScalarType.Float64);
        for (var i = 0; i < r10.Length; i++)
        {
            var l = Priors.Sample(eye3, Distribution.LkjCholesky, concentration: 2, generator: g);
            var r = l.matmul(l.t());
            (r10[i], r21[i]) = (r[1, 0].item<double>(), r[2, 1].item<double>());
        }
        // The variance of a sample variance of m draws is about 2σ⁴/m (kurtosis of the Beta is below normal's).
        var tolerance = 5 * Math.Sqrt(2.0 / r10.Length) / 6;
        Assert.That(r10.Select(v => v * v).Average(), Is.EqualTo(1.0 / 6).Within(tolerance), "R₁₀");
        Assert.That(r21.Select(v => v * v).Average(), Is.EqualTo(1.0 / 6).Within(tolerance), "R₂₁");
    }

    [Test]
    public void ConstrainedModelRoundTripsAndMatchesTheHandWrittenLogPrior()
    {
        var model = new Constrained { DatasetSize = 10 };
        var init = model.InitialParameters();
        Assert.That(init.Names, Is.EqualTo(new[] { "logit_Shift", "logit_Rate", "stick_Weights", "ordered_Cuts", "cpc_Corr" }));
        Assert.That(init["stick_Weights"].shape, Is.EqualTo(new long[] { 3 }));
        Assert.That(init["cpc_Corr"].shape, Is.EqualTo(new long[] { 3 }));
        var back = model.Constrain(init);
        foreach (var (name, value) in new[] { ("Shift", model.Shift), ("Rate", model.Rate), ("Weights", model.Weights), ("Cuts", model.Cuts), ("Corr", model.Corr) })
            Assert.That((back[name] - value).abs().max().item<double>(), Is.LessThan(1e-12), name);

        var at = model.SamplePrior(new Generator(9));
        var θ = model.Constrain(at);
        Assert.That((θ["Cuts"].diff() > 0).all().item<bool>(), Is.True, "ordered draw");
        Assert.That(θ["Weights"].sum().item<double>(), Is.EqualTo(1).Within(1e-12), "simplex draw");
        var expected = Priors.LogProb(θ["Shift"], Distribution.Uniform, low: -1, high: 3) + Bijectors.IntervalLogDetJacobian(at["logit_Shift"], -1, 3)
                       + Priors.LogProb(θ["Rate"], Distribution.Beta, alpha: 2, beta: 5) + Bijectors.IntervalLogDetJacobian(at["logit_Rate"], 0, 1)
                       + Priors.LogProb(θ["Weights"], Distribution.Dirichlet, concentration: 2) + Bijectors.SimplexLogDetJacobian(at["stick_Weights"])
                       + Priors.LogProb(θ["Cuts"], Distribution.Normal, loc: 0, scale: 3) + Bijectors.OrderedLogDetJacobian(at["ordered_Cuts"])
                       + Priors.LogProb(θ["Corr"], Distribution.LkjCholesky, concentration: 2) + Bijectors.CholeskyCorrelationLogDetJacobian(at["cpc_Corr"]);
        Assert.That(model.LogPrior(at).item<double>(), Is.EqualTo(expected.item<double>()).Within(1e-10));

        // The hyperparameter bound moves the interval without recompiling: the same u maps to (−1, 5) now.
        model.Upper = 5;
        var shift = model.Constrain(at)["Shift"];
        Assert.That((shift - (-1 + 6 * at["logit_Shift"].sigmoid())).abs().max().item<double>(), Is.LessThan(1e-12));

        // An initial value outside its constraint is reported with the member's name.
        model.Weights = T(0.5, 0.6, -0.1, 0.0);
        var e = Assert.Throws<InvalidOperationException>(() => model.InitialParameters());
        Assert.That(e!.Message, Does.Contain("Weights"));
    }
}
