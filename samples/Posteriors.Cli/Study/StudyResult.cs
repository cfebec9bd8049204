using Posteriors.Metrics;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>One run's metrics (one method, one τ, one seed).</summary>
public sealed record StudyResult(
    string Method, double? Tau, int Seed, int Members,
    double Accuracy, double Nll, double Ece, double Brier,
    double TestEntropy, double OodEntropy, double OodAuroc, double OodEpistemic, double Seconds)
{
    /// <summary>The metrics of a method's output: the members' predictions are averaged (mixture) first.</summary>
    public static (StudyResult Result, IReadOnlyList<ReliabilityBin> Reliability) From(
        string method, double? tau, int seed, MethodOutput output, Tensor testLabels, double seconds)
    {
        using var scope = NewDisposeScope();
        var test = PredictiveMetrics.Mixture(output.TestLogProbs);
        var ood = PredictiveMetrics.Mixture(output.OodLogProbs);
        var testEntropy = PredictiveMetrics.Entropy(test);
        var oodEntropy = PredictiveMetrics.Entropy(ood);
        var split = EntropyDecomposition.Of(output.OodLogProbs);
        var result = new StudyResult(method, tau, seed, (int)output.TestLogProbs.shape[0],
            PredictiveMetrics.Accuracy(test, testLabels),
            PredictiveMetrics.NegativeLogLikelihood(test, testLabels),
            Calibration.ExpectedCalibrationError(test, testLabels),
            PredictiveMetrics.Brier(test, testLabels),
            testEntropy.mean().item<float>(), oodEntropy.mean().item<float>(),
            Auroc.Compute(oodEntropy, testEntropy),
            split.Epistemic.mean().item<float>(), seconds);
        return (result, Calibration.Reliability(test, testLabels));
    }

    /// <summary>"map" or "sghmc τ=0.1".</summary>
    public string Label => Tau is { } t ? $"{Method} τ={t:G3}" : Method;
}
