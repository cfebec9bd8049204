namespace Posteriors.Cli.Study.Methods;

/// <summary>The baseline: one MAP estimate by Adam (T = 0).</summary>
public sealed class MapMethod : IStudyMethod
{
    /// <inheritdoc />
    public string Name => "map";

    /// <inheritdoc />
    public string Description => "MAP estimate (Adam on log π; T = 0)";

    /// <inheritdoc />
    public bool Tempered => false;

    /// <inheritdoc />
    public long Steps(StudyContext context) => context.TrainingSteps;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress) =>
        context.Predict(new[] { context.Map(seed, progress) });
}
