using static TorchSharp.torch;

namespace Posteriors.Metrics;

/// <summary>
/// Metrics of a classifier's predictive distribution on labelled data. Inputs are log-probabilities [N, C]
/// (log-softmax outputs, or <see cref="Mixture"/> of an ensemble's) and int64 labels [N]; each metric is a mean
/// over the N examples, returned as a double.
/// </summary>
public static class PredictiveMetrics
{
    /// <summary>
    /// The log of the equal-weight mixture of S members' predictive distributions: log (1/S) Σₛ pₛ, computed
    /// stably with log-sum-exp from member log-probabilities [S, N, C]. Returns [N, C].
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="memberLogProbs"/> is not 3-D.</exception>
    public static Tensor Mixture(Tensor memberLogProbs)
    {
        ArgumentNullException.ThrowIfNull(memberLogProbs);
        if (memberLogProbs.dim() != 3)
            throw new ArgumentException($"Member log-probabilities must be [S, N, C]; got [{string.Join(", ", memberLogProbs.shape)}].", nameof(memberLogProbs));
        return memberLogProbs.logsumexp(0) - Math.Log(memberLogProbs.shape[0]);
    }

    /// <summary>Fraction of examples whose most probable class is the label.</summary>
    public static double Accuracy(Tensor logProbs, Tensor labels)
    {
        CheckInputs(logProbs, labels);
        return logProbs.argmax(1).eq(labels).to_type(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>Mean negative log-likelihood of the labels, −(1/N) Σᵢ log p(yᵢ) (nats).</summary>
    public static double NegativeLogLikelihood(Tensor logProbs, Tensor labels)
    {
        CheckInputs(logProbs, labels);
        return -logProbs.gather(1, labels.unsqueeze(1)).to_type(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>Brier score: (1/N) Σᵢ Σ_c (p_c − 1[yᵢ = c])², between 0 and 2.</summary>
    public static double Brier(Tensor logProbs, Tensor labels)
    {
        CheckInputs(logProbs, labels);
        using var scope = NewDisposeScope();
        var p = logProbs.to_type(ScalarType.Float64).exp();
        var onehot = nn.functional.one_hot(labels, logProbs.shape[1]).to_type(ScalarType.Float64);
        return (p - onehot).square().sum(1).mean().item<double>();
    }

    /// <summary>Entropy of each example's predictive distribution, −Σ_c p_c log p_c (nats), as a tensor [N].</summary>
    public static Tensor Entropy(Tensor logProbs)
    {
        ArgumentNullException.ThrowIfNull(logProbs);
        if (logProbs.dim() != 2)
            throw new ArgumentException($"Log-probabilities must be [N, C]; got [{string.Join(", ", logProbs.shape)}].", nameof(logProbs));
        // p log p with p = 0 must give 0, not NaN: exp(−∞)·(−∞) is NaN, so mask it.
        var p = logProbs.exp();
        return -(p * logProbs.masked_fill(p.eq(0), 0)).sum(1);
    }

    /// <summary>Mean predictive entropy over the examples (nats).</summary>
    public static double MeanEntropy(Tensor logProbs) => Entropy(logProbs).to_type(ScalarType.Float64).mean().item<double>();

    internal static void CheckInputs(Tensor logProbs, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logProbs);
        ArgumentNullException.ThrowIfNull(labels);
        if (logProbs.dim() != 2)
            throw new ArgumentException($"Log-probabilities must be [N, C]; got [{string.Join(", ", logProbs.shape)}].", nameof(logProbs));
        if (labels.dim() != 1 || labels.shape[0] != logProbs.shape[0])
            throw new ArgumentException(
                $"Labels must be [N] with N = {logProbs.shape[0]}; got [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"Labels must be int64 class indices; got {labels.dtype}.", nameof(labels));
        if (logProbs.shape[0] == 0) throw new ArgumentException("No examples (N = 0).", nameof(logProbs));
    }

    /// <summary>A 1-D tensor's values as doubles on the host (metrics end as numbers).</summary>
    internal static double[] ToHost(Tensor t) => t.detach().to_type(ScalarType.Float64).to(CPU).contiguous().data<double>().ToArray();
}
