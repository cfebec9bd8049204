namespace Posteriors.Cli.Study.Methods;

/// <summary>A deep ensemble: K MAP runs from independent initialisations and batch orders (T = 0).</summary>
public sealed class DeepEnsembleMethod : IStudyMethod
{
    /// <inheritdoc />
    public string Name => "ensemble";

    /// <inheritdoc />
    public string Description => "deep ensemble of K MAP runs (independent inits; T = 0)";

    /// <inheritdoc />
    public bool Tempered => false;

    /// <inheritdoc />
    public long Steps(StudyContext context) => context.Options.Members * context.TrainingSteps;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var members = new List<Posteriors.Trees.ParameterTree>();
        for (var k = 0; k < context.Options.Members; k++)
        {
            var offset = k * context.TrainingSteps;
            var member = k;
            members.Add(context.TrainMap(seed * 1000 + k + 1, (s, msg) => progress(offset + s, $"member {member + 1}/{context.Options.Members}  {msg}")));
        }
        return context.Predict(members);
    }
}
