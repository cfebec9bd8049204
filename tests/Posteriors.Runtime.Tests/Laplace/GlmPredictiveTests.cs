using Posteriors.Curvature;
using Posteriors.Laplace;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Laplace;

public class GlmPredictiveTests
{
    [Test]
    public void WithoutVarianceBothAreTheSoftmaxAndSigmoid()
    {
        var mu = tensor(new[] { 1.0, -2.0, 0.5, 3.0, 0.0, -1.0 }, dtype: float64).reshape(2, 3);
        var cov = zeros(2, 3, 3, dtype: float64);
        TensorAssert.Close(GlmPredictive.Probit(mu, cov, OutputLikelihood.Categorical), mu.softmax(1), 1e-12, 1e-12);
        TensorAssert.Close(GlmPredictive.MonteCarlo(mu, cov, OutputLikelihood.Categorical, 10, new Generator(1)), mu.softmax(1), 1e-5, 1e-6);
        var b = tensor(new[] { 0.3, -1.2 }, dtype: float64);
        TensorAssert.Close(GlmPredictive.Probit(b, zeros(2, 1, 1, dtype: float64), OutputLikelihood.Bernoulli), b.sigmoid(), 1e-12, 1e-12);
    }

    [Test]
    public void TheBinaryProbitApproximationIsWithinTwoPercentOfTheIntegral()
    {
        // E[σ(f)], f ~ N(μ, s²), by Monte Carlo with 400,000 draws (standard error < 0.001).
        var mu = tensor(new[] { -3.0, -1.0, 0.0, 0.5, 2.0, 4.0 }, dtype: float64);
        var variance = tensor(new[] { 4.0, 1.0, 9.0, 0.25, 16.0, 2.0 }, dtype: float64);
        var cov = variance.reshape(6, 1, 1);
        var probit = GlmPredictive.Probit(mu, cov, OutputLikelihood.Bernoulli);
        var mc = GlmPredictive.MonteCarlo(mu, cov, OutputLikelihood.Bernoulli, 400_000, new Generator(2));
        Assert.That((probit - mc).abs().max().item<double>(), Is.LessThan(0.02));
        // The variance pulls every probability towards ½, more with more variance.
        Assert.That(((probit - 0.5).abs() <= (mu.sigmoid() - 0.5).abs() + 1e-12).all().item<bool>());
    }

    [Test]
    public void TheMulticlassProbitTracksMonteCarloAndShapesAreChecked()
    {
        var g = new Generator(3);
        var mu = randn(new long[] { 8, 4 }, dtype: float64, generator: g) * 2;
        // Independent logits with variances in [0.2, 1.2], the case the approximation is built for (it ignores correlations).
        var cov = diag_embed(rand(new long[] { 8, 4 }, dtype: float64, generator: g) + 0.2);
        var probit = GlmPredictive.Probit(mu, cov, OutputLikelihood.Categorical);
        var mc = GlmPredictive.MonteCarlo(mu, cov, OutputLikelihood.Categorical, 200_000, new Generator(4));
        TensorAssert.Close(probit.sum(1), ones(8, dtype: float64), 1e-12, 1e-12);
        var error = (probit - mc).abs().max().item<double>();
        TestContext.Out.WriteLine($"multiclass probit vs Monte Carlo: largest probability error {error:F4}");
        Assert.That(error, Is.LessThan(0.05));
        Assert.That(Assert.Throws<ArgumentException>(() => GlmPredictive.Probit(mu, cov.narrow(1, 0, 3), OutputLikelihood.Categorical))!.Message,
            Does.Contain("[8, 3, 4]").And.Contain("[8, 4, 4]"));
        Assert.Throws<ArgumentException>(() => GlmPredictive.Probit(mu, cov, OutputLikelihood.Normal(1)));
    }

    [Test]
    public void VarianceSharedByEveryLogitLeavesTheCategoricalProbitAtTheSoftmax()
    {
        // f = μ + c·1 with c ~ N(0, 4): softmax(f) = softmax(μ) for every draw. A linearised posterior has such a direction
        // whenever the last layer has a bias (its GGN is zero along a shift of every bias), with the prior's variance.
        var g = new Generator(5);
        var mu = randn(new long[] { 6, 5 }, dtype: float64, generator: g) * 2;
        var shared = full(new long[] { 6, 5, 5 }, 4.0, dtype: float64);
        TensorAssert.Close(GlmPredictive.Probit(mu, shared, OutputLikelihood.Categorical), mu.softmax(1), 1e-12, 1e-12);
        // The per-logit form reads it as uncertainty: every prediction flattens.
        var perLogit = GlmPredictive.Probit(mu, shared, OutputLikelihood.Categorical, MulticlassProbit.PerLogit);
        TensorAssert.Close(perLogit, (mu / Math.Sqrt(1 + Math.PI / 8 * 4)).softmax(1), 1e-12, 1e-12);
        Assert.That((perLogit.max(1).values < mu.softmax(1).max(1).values).all().item<bool>());
        // On top of independent variances the shared part changes nothing either.
        var independent = diag_embed(rand(new long[] { 6, 5 }, dtype: float64, generator: g) + 0.5);
        TensorAssert.Close(GlmPredictive.Probit(mu, independent + shared, OutputLikelihood.Categorical),
            GlmPredictive.Probit(mu, independent, OutputLikelihood.Categorical), 1e-12, 1e-12);
    }

    [Test]
    public void WithTwoClassesTheCategoricalProbitIsTheBinaryOneOfTheLogitDifference()
    {
        var g = new Generator(6);
        var mu = randn(new long[] { 7, 2 }, dtype: float64, generator: g) * 3;
        var a = randn(new long[] { 7, 2, 2 }, dtype: float64, generator: g);
        var cov = a.bmm(a.transpose(1, 2));
        var difference = (mu.select(1, 0) - mu.select(1, 1)).reshape(7, 1);
        var differenceVariance = (cov[.., 0, 0] + cov[.., 1, 1] - 2 * cov[.., 0, 1]).reshape(7, 1, 1);
        TensorAssert.Close(GlmPredictive.Probit(mu, cov, OutputLikelihood.Categorical).select(1, 0),
            GlmPredictive.Probit(difference, differenceVariance, OutputLikelihood.Bernoulli), 1e-12, 1e-12);
    }

    [Test]
    public void WithCorrelatedLogitsTheCategoricalProbitTracksMonteCarlo()
    {
        // Covariances A Aᵀ / K with A standard normal: strongly correlated logits, variances around 1.
        var g = new Generator(7);
        var mu = randn(new long[] { 16, 6 }, dtype: float64, generator: g) * 3;
        var a = randn(new long[] { 16, 6, 6 }, dtype: float64, generator: g);
        var cov = a.bmm(a.transpose(1, 2)) / 6;
        var mc = GlmPredictive.MonteCarlo(mu, cov, OutputLikelihood.Categorical, 50_000, new Generator(8));
        var error = (GlmPredictive.Probit(mu, cov, OutputLikelihood.Categorical) - mc).abs().max().item<double>();
        // The per-logit form, which ignores the correlations, for comparison.
        var perLogit = GlmPredictive.Probit(mu, cov, OutputLikelihood.Categorical, MulticlassProbit.PerLogit);
        var perLogitError = (perLogit - mc).abs().max().item<double>();
        TestContext.Out.WriteLine($"correlated logits: largest probability error {error:F4} (per-logit form {perLogitError:F4})");
        Assert.That(error, Is.LessThan(0.05));
    }
}
