using Posteriors.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests.Modeling;

/// <summary>Prior draws match their distributions; the densities not covered by the model tests match their formulas.</summary>
public class PriorsTests
{
    private const int Draws = 40_000;

    private static Tensor Draw(Distribution d, double a, double b = 0, double c = 0) =>
        Priors.Sample(zeros(Draws, dtype: ScalarType.Float64), d, a, b, c, new Generator(42));

    private static double Quantile(Tensor x, double q) => x.quantile(tensor(q, dtype: ScalarType.Float64)).item<double>();

    // Tolerances are 5 standard errors: sd/√n for means (sd of the draws' own distribution), and
    // √(p(1−p)/n)/f(q) for the p-quantile q of a density f. With n = 40,000 that is a false-failure rate below 1e-6.
    private static double MeanTolerance(double sd) => 5 * sd / Math.Sqrt(Draws);

    private static double QuantileTolerance(double p, double densityAtQuantile) => 5 * Math.Sqrt(p * (1 - p) / Draws) / densityAtQuantile;

    [Test]
    public void LightTailedDrawsHaveTheRightMeanAndSpread()
    {
        var normal = Draw(Distribution.Normal, 1, 2);
        Assert.That(normal.mean().item<double>(), Is.EqualTo(1).Within(MeanTolerance(2)));
        Assert.That(normal.std().item<double>(), Is.EqualTo(2).Within(0.05));

        var laplace = Draw(Distribution.Laplace, 0.5, 2);   // variance 2b²
        Assert.That(laplace.mean().item<double>(), Is.EqualTo(0.5).Within(MeanTolerance(Math.Sqrt(8))));
        Assert.That((laplace - 0.5).abs().mean().item<double>(), Is.EqualTo(2).Within(MeanTolerance(2)));   // E|x − μ| = b, sd b

        var halfNormal = Draw(Distribution.HalfNormal, 1.5);
        Assert.That(halfNormal.min().item<double>(), Is.GreaterThanOrEqualTo(0));
        Assert.That(halfNormal.mean().item<double>(), Is.EqualTo(1.5 * Math.Sqrt(2 / Math.PI)).Within(MeanTolerance(1.5)));

        var logNormal = Draw(Distribution.LogNormal, 0.3, 0.5).log();
        Assert.That(logNormal.mean().item<double>(), Is.EqualTo(0.3).Within(MeanTolerance(0.5)));
        Assert.That(logNormal.std().item<double>(), Is.EqualTo(0.5).Within(0.015));

        var gamma = Draw(Distribution.Gamma, 3, 2);          // mean α/β, sd √α/β
        Assert.That(gamma.mean().item<double>(), Is.EqualTo(1.5).Within(MeanTolerance(Math.Sqrt(3) / 2)));

        var exponential = Draw(Distribution.Exponential, 4);
        Assert.That(exponential.mean().item<double>(), Is.EqualTo(0.25).Within(MeanTolerance(0.25)));
    }

    [Test]
    public void HeavyTailedDrawsHaveTheRightQuantiles()
    {
        // Cauchy(1, 2): quartiles 1 ± 2, density there 1/(2π·2).
        var cauchy = Draw(Distribution.Cauchy, 1, 2);
        Assert.That(Quantile(cauchy, 0.5), Is.EqualTo(1).Within(QuantileTolerance(0.5, 1 / (Math.PI * 2))));
        Assert.That(Quantile(cauchy, 0.75), Is.EqualTo(3).Within(QuantileTolerance(0.75, 1 / (2 * Math.PI * 2))));

        // Student-t(5, 1, 2): the standard t₅ has its 75% quantile at 0.72669 with density 0.28088 there.
        var t = Draw(Distribution.StudentT, 5, 1, 2);
        Assert.That(Quantile(t, 0.5), Is.EqualTo(1).Within(QuantileTolerance(0.5, 0.37961 / 2)));
        Assert.That(Quantile(t, 0.75), Is.EqualTo(1 + 2 * 0.72669).Within(QuantileTolerance(0.75, 0.28088 / 2)));

        // Half-Cauchy(3): median 3, density there 2/(π·3·2).
        var halfCauchy = Draw(Distribution.HalfCauchy, 3);
        Assert.That(Quantile(halfCauchy, 0.5), Is.EqualTo(3).Within(QuantileTolerance(0.5, 1 / (Math.PI * 3))));
    }

    [Test]
    public void HalfCauchyAndExponentialDensitiesIncludeTheJacobian()
    {
        var u = tensor(new[] { -1.0, 0.2, 1.5 }, dtype: ScalarType.Float64);
        var x = u.exp();
        var halfCauchy = (Math.Log(2 / (Math.PI * 3)) - (x / 3).square().log1p() + u).sum().item<double>();
        Assert.That(Priors.LogProbPositive(u, Distribution.HalfCauchy, 3).item<double>(), Is.EqualTo(halfCauchy).Within(1e-12));
        var exponential = (Math.Log(4) - 4 * x + u).sum().item<double>();
        Assert.That(Priors.LogProbPositive(u, Distribution.Exponential, 4).item<double>(), Is.EqualTo(exponential).Within(1e-12));
        var flat = u.sum().item<double>();   // a flat prior on θ is e^u in u
        Assert.That(Priors.LogProbPositive(u, Distribution.Flat).item<double>(), Is.EqualTo(flat).Within(1e-12));
    }

    [Test]
    public void PositiveDrawsOfARealLinePriorAreFoldedOntoThePositiveHalfLine()
    {
        // Normal(0, 2) restricted to θ > 0 is HalfNormal(2): mean 2√(2/π), sd of the draws below 2.
        var u = Priors.SamplePositive(zeros(Draws, dtype: ScalarType.Float64), Distribution.Normal, 0, 2, 0, new Generator(5));
        TensorAssert.Finite(u);
        Assert.That(u.exp().mean().item<double>(), Is.EqualTo(2 * Math.Sqrt(2 / Math.PI)).Within(MeanTolerance(2)));
        var gamma = Priors.SamplePositive(zeros(Draws, dtype: ScalarType.Float64), Distribution.Gamma, 3, 2, 0, new Generator(6));
        Assert.That(gamma.exp().mean().item<double>(), Is.EqualTo(1.5).Within(MeanTolerance(Math.Sqrt(3) / 2)));
    }

    [Test]
    public void InvalidArgumentsAreRejectedWithTheirName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Priors.LogProb(zeros(1), Distribution.Normal, 0, -1));
        Assert.That(e!.ParamName, Is.EqualTo("scale"));
        Assert.That(e.Message, Does.Contain("-1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Priors.LogProb(zeros(1), Distribution.StudentT, 0, 0, 1));
        Assert.Throws<ArgumentException>(() => Priors.LogProb(zeros(1), Distribution.Gamma, 1, 1));
    }
}
