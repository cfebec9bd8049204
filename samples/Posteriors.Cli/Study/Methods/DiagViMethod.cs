using Posteriors.Optim;
using Posteriors.Trees;
using Posteriors.Vi;
using TorchSharp;

namespace Posteriors.Cli.Study.Methods;

/// <summary>
/// Diagonal Gaussian VI at T = τ/N: μ starts at the seed's MAP estimate, log σ at −5; Adam on the NELBO for E epochs;
/// the predictive averages draws from q.
/// </summary>
public sealed class DiagViMethod : IStudyMethod
{
    /// <summary>Initial log σ of every weight (the cold-posterior study used −3 on larger nets; small σ keeps the MAP start's accuracy).</summary>
    public const double InitLogSd = -5;

    /// <inheritdoc />
    public string Name => "vi-diag";

    /// <inheritdoc />
    public string Description => "diagonal Gaussian VI at T = τ/N (from MAP, Adam on the NELBO), predictive from draws";

    /// <inheritdoc />
    public bool Tempered => true;

    /// <inheritdoc />
    public long Steps(StudyContext context) => context.TrainingSteps;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var start = context.Map(seed, (_, s) => progress(0, "MAP start: " + s));
        var vi = DiagVi.Build(context.Posterior.LogPosterior, Optimizer.Adam(lr: 1e-3), temperature: tau!.Value / context.N,
            initLogSd: InitLogSd);
        var state = context.Run(vi, () => vi.Init(start, seed), seed, context.RunKey, progress);
        var draws = vi.Sample(state, context.PredictiveDraws, seed);
        return context.Predict(Enumerable.Range(0, context.PredictiveDraws).Select(i => draws.Map(t => t[i])));
    }
}
