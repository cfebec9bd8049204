using Posteriors.Metrics;
using static TorchSharp.torch;

namespace Posteriors.Tests.Metrics;

public class MetricsTests
{
    // Four examples, three classes; values below are worked by hand from these probabilities.
    private static readonly double[,] P =
    {
        { 0.70, 0.20, 0.10 },   // y = 0: correct, confidence 0.70
        { 0.10, 0.65, 0.25 },   // y = 2: wrong,   confidence 0.65
        { 0.10, 0.15, 0.75 },   // y = 2: correct, confidence 0.75
        { 0.90, 0.05, 0.05 },   // y = 0: correct, confidence 0.90
    };

    private static Tensor LogP => tensor(P, dtype: ScalarType.Float64).log();
    private static Tensor Y => tensor(new long[] { 0, 2, 2, 0 });

    [Test]
    public void AccuracyNllAndBrierMatchHandComputedValues()
    {
        Assert.That(PredictiveMetrics.Accuracy(LogP, Y), Is.EqualTo(0.75).Within(1e-12));
        // −(ln .7 + ln .25 + ln .75 + ln .9) / 4
        Assert.That(PredictiveMetrics.NegativeLogLikelihood(LogP, Y), Is.EqualTo(2.1360119 / 4).Within(1e-7));
        // (0.09+0.04+0.01) + (0.01+0.4225+0.5625) + (0.01+0.0225+0.0625) + (0.01+0.0025+0.0025), over 4
        Assert.That(PredictiveMetrics.Brier(LogP, Y), Is.EqualTo(1.245 / 4).Within(1e-12));
    }

    [Test]
    public void ExpectedCalibrationErrorMatchesHandComputedBins()
    {
        // Five bins: (0.6, 0.8] holds 0.70, 0.65, 0.75 (mean 0.70, accuracy 2/3); (0.8, 1] holds 0.90 (accuracy 1).
        // ECE = 3/4 · |2/3 − 0.7| + 1/4 · |1 − 0.9| = 0.025 + 0.025.
        Assert.That(Calibration.ExpectedCalibrationError(LogP, Y, bins: 5), Is.EqualTo(0.05).Within(1e-12));
        var bins = Calibration.Reliability(LogP, Y, bins: 5);
        Assert.That(bins.Select(b => b.Count), Is.EqualTo(new long[] { 0, 0, 0, 3, 1 }));
        Assert.That(bins[3].Confidence, Is.EqualTo(0.7).Within(1e-12));
        Assert.That(bins[3].Accuracy, Is.EqualTo(2.0 / 3).Within(1e-12));
        Assert.That(bins[0].Accuracy, Is.NaN);
        Assert.Throws<ArgumentOutOfRangeException>(() => Calibration.Reliability(LogP, Y, bins: 0));
    }

    [Test]
    public void EntropyHandlesZeroProbabilities()
    {
        var logp = tensor(new double[,] { { 0.5, 0.5, 0 }, { 1, 0, 0 } }).log();
        var h = PredictiveMetrics.Entropy(logp);
        Assert.That(h[0].item<double>(), Is.EqualTo(Math.Log(2)).Within(1e-12));
        Assert.That(h[1].item<double>(), Is.EqualTo(0).Within(1e-12));
    }

    [Test]
    public void AurocCountsTiesAsOneHalf()
    {
        // Pairs (pos, neg): (3,1) (3,2) (2,1) (2,2)=½ (2,1) (2,2)=½ → 5 of 6.
        Assert.That(Auroc.Compute(tensor(new[] { 3.0, 2, 2 }), tensor(new[] { 1.0, 2 })), Is.EqualTo(5.0 / 6).Within(1e-12));
        Assert.That(Auroc.Compute((IReadOnlyList<double>)new[] { 1.0 }, new[] { 2.0 }), Is.EqualTo(0));
        Assert.That(Auroc.Compute((IReadOnlyList<double>)new[] { 2.0, 5 }, new[] { 1.0, 0 }), Is.EqualTo(1));
        Assert.Throws<ArgumentException>(() => Auroc.Compute((IReadOnlyList<double>)Array.Empty<double>(), new[] { 1.0 }));
        Assert.Throws<ArgumentException>(() => Auroc.Compute((IReadOnlyList<double>)new[] { double.NaN }, new[] { 1.0 }));
    }

    [Test]
    public void EntropySplitsIntoAleatoricAndEpistemic()
    {
        // Example 0: members disagree completely ([1,0] and [0,1]): all entropy is epistemic (ln 2).
        // Example 1: both members say [½,½]: all entropy is aleatoric.
        var members = tensor(new double[,,] { { { 1, 0 }, { 0.5, 0.5 } }, { { 0, 1 }, { 0.5, 0.5 } } }).log();
        var d = EntropyDecomposition.Of(members);
        var ln2 = Math.Log(2);
        Assert.That(d.Total.data<double>().ToArray(), Is.EqualTo(new[] { ln2, ln2 }).Within(1e-12));
        Assert.That(d.Aleatoric.data<double>().ToArray(), Is.EqualTo(new[] { 0, ln2 }).Within(1e-12));
        Assert.That(d.Epistemic.data<double>().ToArray(), Is.EqualTo(new[] { ln2, 0 }).Within(1e-12));
        var mixture = PredictiveMetrics.Mixture(members).exp();
        Assert.That(mixture[0, 0].item<double>(), Is.EqualTo(0.5).Within(1e-12));
    }

    [Test]
    public void BadShapesAreNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => PredictiveMetrics.Accuracy(LogP, tensor(new long[] { 0, 1 })));
        Assert.That(e!.ParamName, Is.EqualTo("labels"));
        e = Assert.Throws<ArgumentException>(() => PredictiveMetrics.Accuracy(LogP, tensor(new[] { 0f, 1, 2, 0 })));
        Assert.That(e!.Message, Does.Contain("int64"));
        Assert.Throws<ArgumentException>(() => PredictiveMetrics.Mixture(LogP));
    }
}
