using static TorchSharp.torch;

namespace Posteriors.Metrics;

/// <summary>Area under the ROC curve of a score that should be higher for positives than for negatives.</summary>
public static class Auroc
{
    /// <summary>
    /// The probability that a random positive scores higher than a random negative, ties counting one half
    /// (the Mann–Whitney U statistic over n₊ n₋, computed from mid-ranks in O(n log n)). For out-of-distribution
    /// detection, pass the predictive entropy of out-of-distribution inputs as <paramref name="positive"/> and of
    /// in-distribution inputs as <paramref name="negative"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A set is empty or holds NaN.</exception>
    public static double Compute(Tensor positive, Tensor negative)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(negative);
        return Compute((IReadOnlyList<double>)PredictiveMetrics.ToHost(positive.reshape(-1)), PredictiveMetrics.ToHost(negative.reshape(-1)));
    }

    /// <summary>The same from host arrays.</summary>
    public static double Compute(IReadOnlyList<double> positive, IReadOnlyList<double> negative)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(negative);
        if (positive.Count == 0) throw new ArgumentException("No positive scores.", nameof(positive));
        if (negative.Count == 0) throw new ArgumentException("No negative scores.", nameof(negative));
        if (positive.Any(double.IsNaN)) throw new ArgumentException("A positive score is NaN.", nameof(positive));
        if (negative.Any(double.IsNaN)) throw new ArgumentException("A negative score is NaN.", nameof(negative));
        var all = positive.Select(s => (Score: s, Positive: true)).Concat(negative.Select(s => (Score: s, Positive: false)))
            .OrderBy(p => p.Score).ToArray();
        double rankSumPositive = 0;
        for (var i = 0; i < all.Length;)
        {
            var j = i;
            while (j + 1 < all.Length && all[j + 1].Score == all[i].Score) j++;
            var midRank = (i + j) / 2.0 + 1;   // ranks are 1-based; tied scores share their mean rank
            for (var k = i; k <= j; k++) if (all[k].Positive) rankSumPositive += midRank;
            i = j + 1;
        }
        double np = positive.Count, nn = negative.Count;
        return (rankSumPositive - np * (np + 1) / 2) / (np * nn);
    }
}
