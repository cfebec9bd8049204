using Posteriors.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests.Modeling;

/// <summary>Prior draws match their distributions; the densities not covered by the model tests match their formulas.</summary>
public class PriorsTests
{
    private const int Draws = 40_000;

    /// <summary>The arguments in the distribution's documented order, as the named arguments of <see cref="Priors"/>.</summary>
    private static (PriorArgument Loc, PriorArgument Scale, PriorArgument Df, PriorArgument Shape, PriorArgument Rate) Named(Distribution d, params double[] values)
    {
        var names = Priors.ArgumentNames(d);
        PriorArgument Get(string name) => names.ToList().IndexOf(name) is var i and >= 0 ? (PriorArgument)values[i] : default(PriorArgument);
        return (Get("loc"), Get("scale"), Get("df"), Get("shape"), Get("rate"));
    }

    private static Tensor Draw(Distribution d, params double[] values)
    {
        var (loc, scale, df, shape, rate) = Named(d, values);
        return Priors.Sample(zeros(Draws, dtype: ScalarType.Float64), d, loc, scale, df, shape, rate, generator: new Generator(42));
    }

    private static Tensor DrawPositive(Distribution d, ulong seed, params double[] values)
    {
        var (loc, scale, df, shape, rate) = Named(d, values);
        return Priors.SamplePositive(zeros(Draws, dtype: ScalarType.Float64), d, loc, scale, df, shape, rate, generator: new Generator(seed));
    }

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
        Assert.That(Priors.LogProbPositive(u, Distribution.HalfCauchy, scale: 3).item<double>(), Is.EqualTo(halfCauchy).Within(1e-12));
        var exponential = (Math.Log(4) - 4 * x + u).sum().item<double>();
        Assert.That(Priors.LogProbPositive(u, Distribution.Exponential, rate: 4).item<double>(), Is.EqualTo(exponential).Within(1e-12));
        var flat = u.sum().item<double>();   // a flat prior on θ is e^u in u
        Assert.That(Priors.LogProbPositive(u, Distribution.Flat).item<double>(), Is.EqualTo(flat).Within(1e-12));
    }

    [Test]
    public void PositiveDrawsOfARealLinePriorComeFromItsTruncationAboveZero()
    {
        // Normal(0, 2) restricted to θ > 0 is HalfNormal(2): mean 2√(2/π).
        var u = DrawPositive(Distribution.Normal, 5, 0, 2);
        TensorAssert.Finite(u);
        Assert.That(u.exp().mean().item<double>(), Is.EqualTo(2 * Math.Sqrt(2 / Math.PI)).Within(MeanTolerance(2)));
        // Normal(1, 2) truncated to θ > 0: mean μ + σ φ(α)/(1 − Φ(α)) with α = −μ/σ = −0.5, i.e. 1 + 2·0.352065/0.691462.
        // A folded draw (|N(1, 2)|) has mean 2.0906 instead: 5 standard errors away.
        var truncated = DrawPositive(Distribution.Normal, 7, 1, 2).exp();
        Assert.That(truncated.mean().item<double>(), Is.EqualTo(1 + 2 * 0.352065 / 0.691462).Within(MeanTolerance(2)));
        // Laplace(−1, 1) above zero is 1 + Exponential(1) shifted to 0: an Exponential(1), mean 1.
        var laplace = DrawPositive(Distribution.Laplace, 8, -1, 1).exp();
        Assert.That(laplace.mean().item<double>(), Is.EqualTo(1).Within(MeanTolerance(1)));
        var gamma = DrawPositive(Distribution.Gamma, 6, 3, 2);
        Assert.That(gamma.exp().mean().item<double>(), Is.EqualTo(1.5).Within(MeanTolerance(Math.Sqrt(3) / 2)));
    }

    [Test]
    public void PositiveDensityOfARealLinePriorIsTheNormalisedTruncation()
    {
        // log p(θ) = log N(θ; 1, 2) − log P(θ > 0), plus the Jacobian u; P(θ > 0) = Φ(0.5) = 0.691462.
        var u = tensor(new[] { -1.0, 0.2, 1.5 }, dtype: ScalarType.Float64);
        var x = u.exp();
        var expected = (-0.5 * ((x - 1) / 2).square() - Math.Log(2) - 0.5 * Math.Log(2 * Math.PI) - Math.Log(0.691462461274013) + u).sum().item<double>();
        Assert.That(Priors.LogProbPositive(u, Distribution.Normal, loc: 1, scale: 2).item<double>(), Is.EqualTo(expected).Within(1e-6));
        // The same with tensor arguments (a hierarchical prior): same value.
        var loc = tensor(1.0, dtype: ScalarType.Float64);
        Assert.That(Priors.LogProbPositive(u, Distribution.Normal, loc: loc, scale: 2).item<double>(), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void TensorArgumentsBroadcastElementwise()
    {
        // θ ~ Normal(loc_i, scale_i) per element equals the sum of the scalar priors.
        var theta = tensor(new[] { 0.3, -1.2, 2.0 }, dtype: ScalarType.Float64);
        var loc = tensor(new[] { 0.0, -1.0, 1.0 }, dtype: ScalarType.Float64);
        var scale = tensor(new[] { 1.0, 0.5, 3.0 }, dtype: ScalarType.Float64);
        var expected = 0.0;
        for (var i = 0; i < 3; i++)
            expected += Priors.LogProb(theta[i], Distribution.Normal, loc: loc[i].item<double>(), scale: scale[i].item<double>()).item<double>();
        Assert.That(Priors.LogProb(theta, Distribution.Normal, loc: loc, scale: scale).item<double>(), Is.EqualTo(expected).Within(1e-12));
        var studentT = Priors.LogProb(theta, Distribution.StudentT, df: 4, loc: loc, scale: scale).item<double>();
        var expectedT = 0.0;
        for (var i = 0; i < 3; i++)
            expectedT += Priors.LogProb(theta[i], Distribution.StudentT, df: 4, loc: loc[i].item<double>(), scale: scale[i].item<double>()).item<double>();
        Assert.That(studentT, Is.EqualTo(expectedT).Within(1e-12));

        // Draws: per-element location and scale.
        var like = zeros(Draws, 3, dtype: ScalarType.Float64);
        var draws = Priors.Sample(like, Distribution.Normal, loc: loc, scale: scale, generator: new Generator(3));
        Assert.That(draws.shape, Is.EqualTo(new long[] { Draws, 3 }));
        for (var i = 0; i < 3; i++)
            Assert.That(draws[.., i].mean().item<double>(), Is.EqualTo(loc[i].item<double>()).Within(MeanTolerance(scale[i].item<double>())));

        // A tensor argument may not enlarge the parameter.
        Assert.Throws<ArgumentException>(() => Priors.LogProb(zeros(1, dtype: ScalarType.Float64), Distribution.Normal, loc: loc, scale: 1));
    }

    [Test]
    public void InvalidArgumentsAreRejectedWithTheirName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Priors.LogProb(zeros(1), Distribution.Normal, loc: 0, scale: -1));
        Assert.That(e!.ParamName, Is.EqualTo("scale"));
        Assert.That(e.Message, Does.Contain("-1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Priors.LogProb(zeros(1), Distribution.StudentT, df: 0, loc: 0, scale: 1));
        Assert.Throws<ArgumentException>(() => Priors.LogProb(zeros(1), Distribution.Gamma, shape: 1, rate: 1));
        var missing = Assert.Throws<ArgumentException>(() => Priors.LogProb(zeros(1), Distribution.Normal, loc: 0));
        Assert.That(missing!.ParamName, Is.EqualTo("scale"));
        var foreign = Assert.Throws<ArgumentException>(() => Priors.LogProb(zeros(1), Distribution.Normal, loc: 0, scale: 1, rate: 2));
        Assert.That(foreign!.ParamName, Is.EqualTo("rate"));
    }
}
