using static TorchSharp.torch;

namespace Posteriors.Samples.BayesianLora;

/// <summary>Per-statement predictive uncertainty of an ensemble (or posterior draws), in nats per character.</summary>
/// <param name="Total">Entropy of the averaged prediction H[p̄].</param>
/// <param name="Aleatoric">Mean entropy of the members' predictions E_k H[p_k].</param>
/// <param name="Epistemic">Their difference (the mutual information between the next character and the parameters).</param>
internal sealed record StatementUncertainty(double[] Total, double[] Aleatoric, double[] Epistemic);

internal static class Uncertainty
{
    /// <summary>From member probabilities [members, statements, time, vocabulary], averaged over each statement's positions.</summary>
    public static StatementUncertainty Split(Tensor memberProbabilities)
    {
        using var scope = NewDisposeScope();
        static Tensor Entropy(Tensor p) => -(p * p.clamp_min(1e-12).log()).sum(-1);
        var total = Entropy(memberProbabilities.mean(new long[] { 0 })).mean(new long[] { -1 });
        var aleatoric = Entropy(memberProbabilities).mean(new long[] { 0 }).mean(new long[] { -1 });
        var epistemic = (total - aleatoric).clamp_min(0);
        double[] A(Tensor t) => t.to(ScalarType.Float64).cpu().data<double>().ToArray();
        return new StatementUncertainty(A(total), A(aleatoric), A(epistemic));
    }
}

internal static class Ranking
{
    /// <summary>
    /// Area under the ROC curve for telling <paramref name="positives"/> from <paramref name="negatives"/> by score
    /// (Mann–Whitney: the probability that a random positive scores above a random negative, ties counting ½).
    /// </summary>
    public static double Auroc(IReadOnlyList<double> negatives, IReadOnlyList<double> positives)
    {
        if (negatives.Count == 0 || positives.Count == 0) throw new ArgumentException("AUROC needs at least one positive and one negative.");
        double wins = 0;
        foreach (var p in positives)
            foreach (var n in negatives)
                wins += p > n ? 1 : p == n ? 0.5 : 0;
        return wins / ((double)positives.Count * negatives.Count);
    }
}
