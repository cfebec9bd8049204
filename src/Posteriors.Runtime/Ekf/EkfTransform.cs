using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ekf;

/// <summary>
/// What the diagonal and dense filters share: the per-datum log-likelihood, lr, the transition and initial standard
/// deviations (checked once), and the observation of a batch — per-sample gradients at the current mean, their mean ḡ
/// and the batch-mean log-likelihood, checked for NaN/Inf (docs/ALGORITHMS.md §5).
/// </summary>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public abstract class EkfTransform<TBatch>
{
    private protected EkfTransform(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd, double initSd, nn.Module? module)
    {
        LogLikelihood = logLikelihood ?? throw new ArgumentNullException(nameof(logLikelihood));
        Lr = (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true);
        TransitionSd = Check.NonNegative(transitionSd, nameof(transitionSd));
        InitSd = Check.Positive(initSd, nameof(initSd));
        Module = module;
    }

    private protected PerDatumLogDensity<TBatch> LogLikelihood { get; }
    private protected Schedule Lr { get; }
    private protected double TransitionSd { get; }
    private protected double InitSd { get; }
    private protected nn.Module? Module { get; }

    /// <summary>lr at the state's step, the per-sample gradients at μ, the batch size, the mean log-likelihood and ḡ.</summary>
    private protected (double Lr, PerSampleGradients.Factors Factors, long B, Tensor Value, ParameterTree MeanGrad) Observe(AlgorithmState state, TBatch batch)
    {
        ArgumentNullException.ThrowIfNull(state);
        var lr = Lr.At(state.Step, "lr", positive: true);
        var factors = PerSampleGradients.Factor(LogLikelihood, state.Params, batch, null, Module);
        var b = factors.Values.shape[0];
        var value = factors.Values.mean();
        var meanGrad = factors.Sum().Multiply(1.0 / b);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, meanGrad);
        return (lr, factors, b, value, meanGrad);
    }
}
