using Posteriors.Curvature;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>The two multiclass extensions of the probit approximation (docs/ALGORITHMS.md §4c).</summary>
public enum MulticlassProbit
{
    /// <summary>
    /// The binary probit of every difference of logits, p_k ∝ 1 / Σ_j exp(−(μ_k − μ_j) / √(1 + π Var(f_k − f_j) / 8)): unchanged
    /// by a shift common to every logit, as the softmax is; the closer to Monte Carlo.
    /// </summary>
    Pairwise,

    /// <summary>
    /// Each logit scaled by its own variance, p_k ∝ exp(μ_k / √(1 + π Σ_kk / 8)) (laplace-torch's "probit"): it reads variance
    /// shared by every logit (which the softmax ignores) as uncertainty, so it flattens more than the integral does.
    /// </summary>
    PerLogit,
}

/// <summary>
/// Class probabilities from the linearised (GLM) predictive's Gaussian over the outputs, N(μ, Σ) per datum
/// (docs/ALGORITHMS.md §4c): the probit approximation in closed form, or Monte Carlo over output draws.
/// </summary>
public static class GlmPredictive
{
    /// <summary>
    /// The probit approximation. Bernoulli: p = σ(μ / √(1 + π σ²/8)) (exact for the probit link that matches the logistic's
    /// slope at 0). Categorical: by default its pairwise multiclass extension, which applies the binary one to every
    /// difference of logits, p_k ∝ 1 / Σ_j exp(−(μ_k − μ_j) / √(1 + π Var(f_k − f_j) / 8)), normalised, with
    /// Var(f_k − f_j) = Σ_kk + Σ_jj − 2 Σ_kj. Like the softmax it is unchanged by a shift common to every logit (whose
    /// variance the likelihood cannot reduce, so only the prior sets it), and with two classes it is the binary probit.
    /// <see cref="MulticlassProbit.PerLogit"/> scales each logit by its own variance instead.
    /// </summary>
    /// <param name="mean">μ: [B, K] (or [B] / [B, 1] for Bernoulli).</param>
    /// <param name="covariance">Σ: [B, K, K].</param>
    /// <param name="likelihood">Categorical or Bernoulli.</param>
    /// <param name="form">The categorical form (ignored for Bernoulli).</param>
    /// <returns>Probabilities [B, K] (categorical) or [B] (Bernoulli: of the positive class).</returns>
    /// <exception cref="ArgumentException">The shapes disagree, or the likelihood is not a classification one.</exception>
    public static Tensor Probit(Tensor mean, Tensor covariance, OutputLikelihood likelihood, MulticlassProbit form = MulticlassProbit.Pairwise)
    {
        var (mu, variance) = Check(mean, covariance, likelihood);
        if (likelihood.Kind == OutputLikelihoodKind.Bernoulli || form == MulticlassProbit.PerLogit)
        {
            var scaled = mu / (1 + Math.PI / 8 * variance).sqrt();
            return likelihood.Kind == OutputLikelihoodKind.Bernoulli ? scaled.squeeze(1).sigmoid() : scaled.softmax(1);
        }
        using var scope = NewDisposeScope();
        // The differences carry only what changes the probabilities: variance shared by all logits drops out.
        var differenceVariance = (variance.unsqueeze(2) + variance.unsqueeze(1) - 2 * covariance).clamp_min(0);
        var z = (mu.unsqueeze(2) - mu.unsqueeze(1)) / (1 + Math.PI / 8 * differenceVariance).sqrt();
        return (-(-z).logsumexp(2)).softmax(1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Monte Carlo: the mean of softmax (or sigmoid) over <paramref name="samples"/> draws f = μ + L ξ, L L ᵀ = Σ (with a
    /// 1e-6 jitter on the diagonal, relative to the largest variance).
    /// </summary>
    /// <param name="mean">μ: [B, K] (or [B] / [B, 1] for Bernoulli).</param>
    /// <param name="covariance">Σ: [B, K, K].</param>
    /// <param name="likelihood">Categorical or Bernoulli.</param>
    /// <param name="samples">Number of draws.</param>
    /// <param name="generator">The draws' generator.</param>
    public static Tensor MonteCarlo(Tensor mean, Tensor covariance, OutputLikelihood likelihood, long samples, Generator? generator = null)
    {
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "The number of draws must be positive.");
        var (mu, variance) = Check(mean, covariance, likelihood);
        using var scope = NewDisposeScope();
        var k = mu.shape[1];
        var jitter = variance.max().clamp_min(1e-12) * 1e-6;
        var l = linalg.cholesky(covariance + eye(k, dtype: mu.dtype, device: mu.device) * jitter);
        var xi = randn(new[] { samples, mu.shape[0], k, 1 }, dtype: mu.dtype, device: mu.device, generator: generator);
        var f = mu.unsqueeze(0) + Checked.MatMul(l.unsqueeze(0), xi).squeeze(-1);
        var p = likelihood.Kind == OutputLikelihoodKind.Bernoulli ? f.squeeze(2).sigmoid() : f.softmax(2);
        return p.mean(new long[] { 0 }).MoveToOuterDisposeScope();
    }

    private static (Tensor Mean, Tensor Variance) Check(Tensor mean, Tensor covariance, OutputLikelihood likelihood)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(covariance);
        ArgumentNullException.ThrowIfNull(likelihood);
        if (likelihood.Kind == OutputLikelihoodKind.Normal)
            throw new ArgumentException("The probit approximation is for classification (Categorical or Bernoulli) likelihoods; a Normal one's predictive is N(μ, Σ + σ²I) itself.", nameof(likelihood));
        var mu = OutputLikelihood.AsMatrix(mean);
        var (b, k) = (mu.shape[0], mu.shape[1]);
        if (!covariance.shape.SequenceEqual(new[] { b, k, k }))
            throw new ArgumentException($"The covariance has shape [{string.Join(", ", covariance.shape)}]; the mean's [{b}, {k}] needs [{b}, {k}, {k}].", nameof(covariance));
        return (mu, covariance.diagonal(0, 1, 2));
    }
}
