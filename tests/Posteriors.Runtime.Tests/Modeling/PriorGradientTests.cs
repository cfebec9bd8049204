using Posteriors.Modeling;
using Posteriors.Testing;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Modeling;

/// <summary>The closed-form prior gradients against autograd of the same log densities, and their use by the samplers.</summary>
public class PriorGradientTests
{
    private static readonly (Distribution D, double A, double B, double C)[] RealLine =
    {
        (Distribution.Flat, 0, 0, 0), (Distribution.Normal, 0, 1.5, 0), (Distribution.Normal, -0.7, 0.4, 0), (Distribution.Laplace, 0.3, 0.8, 0),
        (Distribution.Cauchy, -0.2, 2.5, 0), (Distribution.StudentT, 3, 0.1, 0.7), (Distribution.StudentT, 0.5, -1, 2),
    };

    private static readonly (Distribution D, double A, double B, double C)[] Positive =
    {
        (Distribution.HalfNormal, 1.3, 0, 0), (Distribution.HalfCauchy, 0.6, 0, 0), (Distribution.LogNormal, 0.2, 0.9, 0),
        (Distribution.Gamma, 2.5, 1.7, 0), (Distribution.Exponential, 0.8, 0, 0),
        // Real-line priors restricted to θ > 0, and Flat, in the log coordinate.
        // (a truncated StudentT needs loc 0).
        (Distribution.Flat, 0, 0, 0), (Distribution.Normal, 0.5, 2, 0), (Distribution.Laplace, 1, 0.5, 0), (Distribution.Cauchy, 0, 1, 0),
        (Distribution.StudentT, 4, 0, 1.5),
    };

    private static Tensor Points() => randn(new long[] { 7, 9 }, dtype: ScalarType.Float64, generator: new Generator(5)) * 2;

    [Test]
    public void RealLineGradientsEqualAutogradToOneInAMillion()
    {
        foreach (var (d, a, b, c) in RealLine)
            AssertEqualToAutograd(t => LogProb(t, d, a, b, c, positive: false), Priors.Gradient(Points(), d, a, b, c), $"{d}({a}, {b}, {c})");
    }

    [Test]
    public void PositiveGradientsIncludeTheJacobianAndEqualAutograd()
    {
        foreach (var (d, a, b, c) in Positive)
            AssertEqualToAutograd(u => LogProb(u, d, a, b, c, positive: true), Priors.GradientPositive(Points(), d, a, b, c), $"{d}({a}, {b}, {c}) on log θ");
    }

    [Test]
    public void PositiveSupportPriorsAreRejectedOnTheRealLineByName()
    {
        var e = Assert.Throws<ArgumentException>(() => Priors.Gradient(zeros(3), Distribution.Gamma, 2, 1));
        Assert.That(e!.Message, Does.Contain("Gamma").And.Contain("GradientPositive"));
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => Priors.Gradient(zeros(3), Distribution.Normal, 0, -1));
        Assert.That(range!.ParamName, Is.EqualTo("scale"));
        Assert.Throws<NotSupportedException>(() => Priors.Gradient(zeros(3), Distribution.Beta, 2, 2));
    }

    [Test]
    public void SamplersFoldAnAnalyticPriorGradientIntoTheStep()
    {
        // The same log posterior twice: the prior by autograd, and the prior in closed form beside the likelihood.
        const double n = 50;
        var x = randn(new long[] { 20, 4 }, dtype: ScalarType.Float64, generator: new Generator(1));
        var y = randn(new long[] { 20 }, dtype: ScalarType.Float64, generator: new Generator(2));
        Tensor Likelihood(ParameterTree p) => (x.matmul(p["w"]) - y).square().mean() * -0.5;
        LogPosterior<object?> autogradPrior = (p, _) =>
            Likelihood(p) + (Priors.LogProb(p["w"], Distribution.Laplace, 0.1, 2) + Priors.LogProbPositive(p["log_s"], Distribution.HalfCauchy, scale: 1)) / n;
        LogPosterior<object?> analyticPrior = (p, _) =>
        {
            Tensor value;
            using (no_grad())
                value = (Priors.LogProb(p["w"], Distribution.Laplace, 0.1, 2) + Priors.LogProbPositive(p["log_s"], Distribution.HalfCauchy, scale: 1)) / n;
            var gradient = ParameterTree.From(("w", Priors.Gradient(p["w"], Distribution.Laplace, 0.1, 2) / n),
                ("log_s", Priors.GradientPositive(p["log_s"], Distribution.HalfCauchy, 1) / n));
            return new LogDensityResult(Likelihood(p) + value, analyticGradient: gradient);
        };
        var start = ParameterTree.From(("w", tensor(new[] { 0.3, -0.2, 1.1, 0.05 }, dtype: ScalarType.Float64)), ("log_s", tensor(new[] { 0.4 }, dtype: ScalarType.Float64)));
        var reference = Autodiff.ValueAndGrad(autogradPrior, start, null);
        var folded = Autodiff.ValueAndGrad(analyticPrior, start, null);
        Assert.That(folded.Value.item<double>(), Is.EqualTo(reference.Value.item<double>()).Within(1e-12));
        for (var i = 0; i < start.Count; i++)
        {
            TensorAssert.Close(folded.Gradient.Leaves[i], reference.Gradient.Leaves[i], 1e-6, 1e-9, start.Names[i]);
            TensorAssert.Finite(folded.Gradient.Leaves[i], start.Names[i]);
        }

        TrajectoryAssert.SameSghmcTrajectory(autogradPrior, analyticPrior, start, null, lr: 0.05, temperature: 0.01, steps: 20);
    }

    [Test]
    public void ComputationsThatDifferentiateTheValueRejectAnAnalyticGradient()
    {
        var p = ParameterTree.From(("w", ones(3)));
        LogPosterior<object?> logPosterior = (q, _) => new LogDensityResult(q["w"].sum(), analyticGradient: q.ZerosLike());
        var e = Assert.Throws<NotSupportedException>(() => Autodiff.Evaluate(logPosterior, p, null));
        Assert.That(e!.Message, Does.Contain("AnalyticGradient"));
        Assert.DoesNotThrow(() => Autodiff.ValueAndGrad(logPosterior, p, null));
    }

    /// <summary>The library's log density with the constants named in the order of <see cref="Priors.ArgumentNames"/>.</summary>
    private static Tensor LogProb(Tensor t, Distribution d, double a, double b, double c, bool positive)
    {
        var args = Priors.ArgumentNames(d).Zip(new[] { a, b, c }).ToDictionary(p => p.First, p => (PriorArgument)p.Second);
        PriorArgument Arg(string name) => args.TryGetValue(name, out var v) ? v : default;
        return positive
            ? Priors.LogProbPositive(t, d, loc: Arg("loc"), scale: Arg("scale"), df: Arg("df"), shape: Arg("shape"), rate: Arg("rate"))
            : Priors.LogProb(t, d, loc: Arg("loc"), scale: Arg("scale"), df: Arg("df"), shape: Arg("shape"), rate: Arg("rate"));
    }

    private static void AssertEqualToAutograd(Func<Tensor, Tensor> logDensity, Tensor analytic, string what)
    {
        var leaf = Points().requires_grad_(true);
        var value = logDensity(leaf);
        var expected = value.requires_grad ? autograd.grad(new[] { value }, new[] { leaf })[0] : zeros_like(leaf);
        var difference = (analytic - expected).abs().max().item<double>();
        Assert.That(difference, Is.LessThanOrEqualTo(1e-6 * Math.Max(1, expected.abs().max().item<double>())), what);
    }
}
