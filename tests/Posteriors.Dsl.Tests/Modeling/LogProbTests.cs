using Posteriors.Modeling;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests.Modeling;

/// <summary>The likelihood helpers against closed forms written out with their normalising constants.</summary>
public class LogProbTests
{
    private static Tensor T(params double[] v) => tensor(v, dtype: ScalarType.Float64);

    private static double At(Tensor t, int i = 0) => t.reshape(-1)[i].item<double>();

    [Test]
    public void CountLikelihoodsMatchTheirPmfs()
    {
        // Poisson(3; λ = 2) = 2³ e⁻² / 3!
        Assert.That(At(LogProb.Poisson(T(3), T(Math.Log(2)))), Is.EqualTo(3 * Math.Log(2) - 2 - Math.Log(6)).Within(1e-12));
        // NegativeBinomial(4; μ = 3, φ = 2) = Γ(6)/(Γ(2) 4!) (2/5)² (3/5)⁴
        var nb = Math.Log(120) - Math.Log(24) + 2 * Math.Log(0.4) + 4 * Math.Log(0.6);
        Assert.That(At(LogProb.NegativeBinomial(T(4), T(Math.Log(3)), 2.0)), Is.EqualTo(nb).Within(1e-12));
        Assert.That(At(LogProb.NegativeBinomial(T(4), T(Math.Log(3)), T(2))), Is.EqualTo(nb).Within(1e-12));
        // Binomial(3; n = 10, p = σ(0.4)) = C(10, 3) p³ (1 − p)⁷
        var p = 1 / (1 + Math.Exp(-0.4));
        Assert.That(At(LogProb.Binomial(T(3), T(0.4), 10)), Is.EqualTo(Math.Log(120) + 3 * Math.Log(p) + 7 * Math.Log(1 - p)).Within(1e-12));

        // Each pmf sums to one over its support.
        var counts = arange(0, 400, dtype: ScalarType.Float64);
        Assert.That(LogProb.Poisson(counts, T(Math.Log(7))).exp().sum().item<double>(), Is.EqualTo(1).Within(1e-10));
        Assert.That(LogProb.NegativeBinomial(counts, T(Math.Log(5)), 0.7).exp().sum().item<double>(), Is.EqualTo(1).Within(1e-8));
        Assert.That(LogProb.Binomial(arange(0, 11, dtype: ScalarType.Float64), T(-1.3), 10).exp().sum().item<double>(), Is.EqualTo(1).Within(1e-12));
    }

    [Test]
    public void ContinuousLikelihoodsMatchTheirDensities()
    {
        // Gamma(1.5; 2, 3) = 3² 1.5 e^(−4.5) / Γ(2)
        Assert.That(At(LogProb.Gamma(T(1.5), T(2), T(3))), Is.EqualTo(2 * Math.Log(3) + Math.Log(1.5) - 4.5).Within(1e-12));
        // Beta(0.3; 2, 5) = 0.3 · 0.7⁴ / B(2, 5), B(2, 5) = 1/30
        Assert.That(At(LogProb.Beta(T(0.3), T(2), T(5))), Is.EqualTo(Math.Log(0.3) + 4 * Math.Log(0.7) + Math.Log(30)).Within(1e-12));
        // LogNormal(2; 0.5, 0.7) = exp(−(ln 2 − 0.5)²/(2·0.49)) / (2 · 0.7 √(2π))
        var logNormal = -Math.Pow(Math.Log(2) - 0.5, 2) / (2 * 0.49) - Math.Log(2 * 0.7 * Math.Sqrt(2 * Math.PI));
        Assert.That(At(LogProb.LogNormal(T(2), T(0.5), T(0.7))), Is.EqualTo(logNormal).Within(1e-12));
        // Exponential(0.7; 2) = 2 e^(−1.4)
        Assert.That(At(LogProb.Exponential(T(0.7), T(2))), Is.EqualTo(Math.Log(2) - 1.4).Within(1e-12));
    }

    [Test]
    public void MultivariateNormalMatchesTheDensityOfLLTranspose()
    {
        // L = [[2, 0], [0.5, 1]]: Σ = [[4, 1], [1, 1.25]], |Σ| = 4; at x − μ = (1, −1), (x − μ)ᵀ Σ⁻¹ (x − μ) = 7.25 / 4.
        var l = tensor(new[,] { { 2.0, 0.0 }, { 0.5, 1.0 } }, dtype: ScalarType.Float64);
        var loc = T(0.5, 2);
        var x = tensor(new[,] { { 1.5, 1.0 }, { 0.5, 2.0 } }, dtype: ScalarType.Float64);   // rows: (1, −1) and 0 from μ
        var values = LogProb.MultivariateNormal(x, loc, l);
        Assert.That(values.shape, Is.EqualTo(new long[] { 2 }));
        Assert.That(At(values, 0), Is.EqualTo(-0.5 * 7.25 / 4 - 0.5 * Math.Log(4) - Math.Log(2 * Math.PI)).Within(1e-12));
        Assert.That(At(values, 1), Is.EqualTo(-0.5 * Math.Log(4) - Math.Log(2 * Math.PI)).Within(1e-12));
        // A batch of factors, one per row, gives the same values.
        var batched = LogProb.MultivariateNormal(x, loc, l.expand(2, 2, 2));
        Assert.That((batched - values).abs().max().item<double>(), Is.LessThan(1e-12));
    }

    [Test]
    public void InvalidConstantsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LogProb.NegativeBinomial(T(1), T(0), 0.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LogProb.Binomial(T(1), T(0), -1));
    }
}
