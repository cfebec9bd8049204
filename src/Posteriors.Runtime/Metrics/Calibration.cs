using static TorchSharp.torch;

namespace Posteriors.Metrics;

/// <summary>One bin of a reliability diagram.</summary>
/// <param name="Lower">Lower edge of the confidence bin (exclusive, except 0 for the first bin).</param>
/// <param name="Upper">Upper edge (inclusive).</param>
/// <param name="Count">Number of examples whose confidence falls in the bin.</param>
/// <param name="Confidence">Mean confidence (top-class probability) in the bin; NaN when empty.</param>
/// <param name="Accuracy">Fraction correct in the bin; NaN when empty.</param>
public sealed record ReliabilityBin(double Lower, double Upper, long Count, double Confidence, double Accuracy);

/// <summary>Calibration of the top-class confidence: reliability bins and the expected calibration error.</summary>
public static class Calibration
{
    /// <summary>
    /// Splits the examples into <paramref name="bins"/> equal-width confidence bins (b/B, (b+1)/B] by their
    /// top-class probability and reports, per bin, the count, mean confidence and accuracy.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bins"/> &lt; 1.</exception>
    public static IReadOnlyList<ReliabilityBin> Reliability(Tensor logProbs, Tensor labels, int bins = 15)
    {
        PredictiveMetrics.CheckInputs(logProbs, labels);
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "Need at least one bin.");
        double[] confidence, correct;
        using (NewDisposeScope())
        {
            var (top, predicted) = logProbs.max(1);
            confidence = PredictiveMetrics.ToHost(top.exp());
            correct = PredictiveMetrics.ToHost(predicted.eq(labels));
        }
        var count = new long[bins];
        var sumConfidence = new double[bins];
        var sumCorrect = new double[bins];
        for (var i = 0; i < confidence.Length; i++)
        {
            var b = Math.Clamp((int)Math.Ceiling(confidence[i] * bins) - 1, 0, bins - 1);
            count[b]++;
            sumConfidence[b] += confidence[i];
            sumCorrect[b] += correct[i];
        }
        return Enumerable.Range(0, bins).Select(b => new ReliabilityBin(
            (double)b / bins, (double)(b + 1) / bins, count[b],
            count[b] > 0 ? sumConfidence[b] / count[b] : double.NaN,
            count[b] > 0 ? sumCorrect[b] / count[b] : double.NaN)).ToArray();
    }

    /// <summary>
    /// Expected calibration error, Σ_b (n_b / N) |accuracy_b − confidence_b| over <paramref name="bins"/>
    /// equal-width bins of the top-class confidence (Guo et al. 2017; 15 bins by default).
    /// </summary>
    public static double ExpectedCalibrationError(Tensor logProbs, Tensor labels, int bins = 15)
    {
        var reliability = Reliability(logProbs, labels, bins);
        var n = reliability.Sum(b => b.Count);
        return reliability.Where(b => b.Count > 0).Sum(b => b.Count * Math.Abs(b.Accuracy - b.Confidence)) / n;
    }
}
