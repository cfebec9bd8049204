using Posteriors.Serialization;
using Posteriors.Trees;

namespace Posteriors.Samples;

/// <summary>
/// A parameter tree (a pre-trained base, a fitted mean, a trained member) and optionally a second tree shaped like it
/// (standard deviations), checkpointed through <see cref="StateFile"/>.
/// </summary>
internal sealed class ParameterSnapshot(ParameterTree parameters, ParameterTree? extra = null) : Posteriors.Serialization.IPersistentState<ParameterSnapshot>
{
    public ParameterTree Parameters { get; } = parameters;
    public ParameterTree? Extra { get; } = extra;
    public static string Kind => "ParameterSnapshot";
    public static int KindVersion => 1;

    public void WriteTo(StateRecord record)
    {
        record.Set("parameters", Parameters);
        if (Extra is not null) record.Set("extra", Extra);
    }

    public static ParameterSnapshot ReadFrom(StateRecord record) =>
        new(record.GetTree("parameters"), record.Has("extra") ? record.GetTree("extra") : null);
}
