using Posteriors.Serialization;
using Posteriors.Trees;

namespace Posteriors.Samples;

/// <summary>A parameter tree (a pre-trained base, a fitted mean, a trained member), checkpointed through <see cref="StateFile"/>.</summary>
internal sealed class ParameterSnapshot(ParameterTree parameters) : IPersistentState<ParameterSnapshot>
{
    public ParameterTree Parameters { get; } = parameters;
    public static string Kind => "ParameterSnapshot";
    public static int KindVersion => 1;
    public void WriteTo(StateRecord record) => record.Set("parameters", Parameters);
    public static ParameterSnapshot ReadFrom(StateRecord record) => new(record.GetTree("parameters"));
}
