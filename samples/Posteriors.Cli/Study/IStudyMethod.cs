using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>
/// What a method hands back: the log predictive probabilities of each member (ensemble member, sample, draw)
/// on the test set [S, N, C] and on the out-of-distribution set [S, M, C].
/// </summary>
public sealed record MethodOutput(Tensor TestLogProbs, Tensor OodLogProbs);

/// <summary>One method of the study. Adding a method = one class implementing this + one line in <see cref="MethodRegistry"/>.</summary>
public interface IStudyMethod
{
    /// <summary>The name used on the command line and in the tables (e.g. <c>sghmc-parallel</c>).</summary>
    string Name { get; }

    /// <summary>One line for <c>--help</c> and the report.</summary>
    string Description { get; }

    /// <summary>Whether the method runs once per temperature τ (T = τ/N); otherwise once, at T = 0.</summary>
    bool Tempered { get; }

    /// <summary>Number of optimisation/sampling steps the run takes (for progress bars).</summary>
    long Steps(StudyContext context);

    /// <summary>Runs the method and returns its members' predictions.</summary>
    /// <param name="context">Data, model and helpers.</param>
    /// <param name="tau">τ for tempered methods; null otherwise.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="progress">Called with the number of steps done so far (and a short status).</param>
    MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress);
}
