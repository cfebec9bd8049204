using static TorchSharp.torch;

namespace Posteriors.Metrics;

/// <summary>
/// Predictive entropy of an ensemble or sample set split into its aleatoric and epistemic parts, per example
/// (tensors [N], nats): total = H[(1/S) Σₛ pₛ], aleatoric = (1/S) Σₛ H[pₛ] (expected entropy of one member),
/// epistemic = total − aleatoric (the mutual information between the label and the parameters, ≥ 0).
/// </summary>
/// <param name="Total">Entropy of the mixture.</param>
/// <param name="Aleatoric">Mean entropy of the members.</param>
/// <param name="Epistemic">Mutual information, total − aleatoric.</param>
public sealed record EntropyDecomposition(Tensor Total, Tensor Aleatoric, Tensor Epistemic)
{
    /// <summary>Splits the entropy of S members' log-probabilities [S, N, C].</summary>
    /// <exception cref="ArgumentException">The input is not 3-D.</exception>
    public static EntropyDecomposition Of(Tensor memberLogProbs)
    {
        var mixture = PredictiveMetrics.Mixture(memberLogProbs);
        var total = PredictiveMetrics.Entropy(mixture);
        var s = memberLogProbs.shape[0];
        var members = PredictiveMetrics.Entropy(memberLogProbs.reshape(-1, memberLogProbs.shape[2])).reshape(s, -1);
        var aleatoric = members.mean(new long[] { 0 });
        return new EntropyDecomposition(total, aleatoric, total - aleatoric);
    }
}
