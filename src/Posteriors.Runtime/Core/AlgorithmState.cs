using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>
/// The one shape of every algorithm's state: named fields — trees, tensors and integers — held in one
/// <see cref="StateRecord"/>. A state class only names its fields (one property each, and the list that a loaded file
/// is checked against); copying, disposal, persistence and the in-place-or-copy rule of every update live here.
/// </summary>
/// <remarks>
/// Every state has <c>params</c> (the parameters, or the mean of a Gaussian), <c>step</c> and <c>log_posterior</c>.
/// Field names are snake_case and mean the same thing in every kind. The auxiliary output of the last update
/// (<see cref="Aux"/>) belongs to the state but is not saved.
/// </remarks>
public abstract class AlgorithmState : IAlgorithmState, IDisposable
{
    /// <summary>The field names every state has.</summary>
    internal const string ParamsField = "params", StepField = "step", LogPosteriorField = "log_posterior", SeedField = "seed";

    private protected AlgorithmState(StateRecord fields) => Fields = fields ?? throw new ArgumentNullException(nameof(fields));

    /// <summary>The state's fields, in the order they are saved.</summary>
    internal StateRecord Fields { get; }

    /// <inheritdoc />
    public ParameterTree Params => Fields.GetTree(ParamsField);

    /// <inheritdoc />
    public long Step
    {
        get => Fields.GetLong(StepField);
        internal set => Fields.Set(StepField, value);
    }

    /// <inheritdoc />
    public Tensor LogPosterior => Fields.GetTensor(LogPosteriorField);

    /// <inheritdoc />
    public Tensor? Aux { get; private set; }

    /// <summary>A state of the same kind over <paramref name="fields"/> (the derived class's constructor).</summary>
    private protected abstract AlgorithmState Create(StateRecord fields);

    /// <summary>Writes every field to <paramref name="record"/> (<see cref="IPersistentState{TSelf}.WriteTo"/>).</summary>
    public void WriteTo(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        Sync();
        Fields.CopyTo(record);
    }

    /// <summary>Brings fields that mirror a live object (an adapter's optimizer) up to date before the state is saved or copied.</summary>
    private protected virtual void Sync() { }

    /// <summary>Disposes every tensor the state owns, its auxiliary output included.</summary>
    public void Dispose()
    {
        Fields.DisposeTensors();
        Aux?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A deep copy: new tensors with the same values, owned by the copy.</summary>
    internal AlgorithmState CopyState()
    {
        Sync();
        var copy = Create(Fields.Clone());
        copy.Aux = Aux is null ? null : StateRecord.Own(Aux);
        return copy;
    }

    /// <summary>
    /// The one in-place-or-copy rule of every update: the state the update writes into is the given one (in place) or
    /// a deep copy of it (copying). Both then go through the same in-place arithmetic, which is what makes the two forms
    /// bit-identical.
    /// </summary>
    internal static TState Target<TState>(TState state, bool inplace) where TState : AlgorithmState
    {
        ArgumentNullException.ThrowIfNull(state);
        return inplace ? state : (TState)state.CopyState();
    }

    /// <summary>
    /// Records the update's log density and auxiliary output (taken out of the current dispose scope: the state owns it,
    /// and the next in-place update disposes it) and advances the step counter.
    /// </summary>
    internal static TState Finish<TState>(TState target, Tensor value, Tensor? aux) where TState : AlgorithmState
    {
        CopyScalar(target.LogPosterior, value);
        var previous = target.Aux;
        target.Aux = aux?.detach().DetachFromDisposeScope();
        if (previous is not null && !ReferenceEquals(previous, target.Aux)) previous.Dispose();
        target.Step++;
        return target;
    }

    /// <summary>
    /// <paramref name="into"/> ← <paramref name="value"/>; two one-element CPU tensors of one float dtype through their
    /// storage (copy_ is a libtorch dispatch, a microsecond a step that a small model notices).
    /// </summary>
    private static void CopyScalar(Tensor into, Tensor value)
    {
        if (into.numel() == 1 && value.numel() == 1 && into.dtype == value.dtype && into.dtype is ScalarType.Float32 or ScalarType.Float64
            && into.device_type == DeviceType.CPU && value.device_type == DeviceType.CPU && into.is_contiguous() && value.is_contiguous())
            value.bytes.CopyTo(into.bytes);
        else
            using (no_grad()) into.copy_(value);
    }

    /// <summary>
    /// Chain <paramref name="k"/> of a stacked state (every tensor field with a leading chain dimension) as a state of
    /// its own whose tensors are views of the stacked ones; its log density is a scalar of its own.
    /// </summary>
    internal AlgorithmState Member(int k)
    {
        var fields = new StateRecord { Kind = Fields.Kind, KindVersion = Fields.KindVersion };
        foreach (var (name, value) in Fields.Fields)
        {
            fields.SetValue(name, value switch
            {
                _ when name == LogPosteriorField => TransformExtensions.NotYetEvaluated(Params),
                Tensor t => t.select(0, k),
                ParameterTree tree => tree.Map(t => t.select(0, k)),
                var other => other,
            });
        }
        return Create(fields);
    }

    /// <summary>
    /// The chains stacked into one state: every tensor field gains a leading chain dimension (copies owned by the
    /// result); integers (step, seed) are taken from the first chain.
    /// </summary>
    internal static TState Stack<TState>(IReadOnlyList<TState> chains) where TState : AlgorithmState
    {
        var first = chains[0];
        foreach (var chain in chains) chain.Sync();
        var fields = new StateRecord { Kind = first.Fields.Kind, KindVersion = first.Fields.KindVersion };
        foreach (var (name, value) in first.Fields.Fields)
        {
            fields.SetValue(name, value switch
            {
                _ when name == LogPosteriorField => StateRecord.Own((Tensor)value),
                Tensor => stack(chains.Select(c => c.Fields.GetTensor(name)).ToArray()).DetachFromDisposeScope(),
                ParameterTree tree => tree.Map((leaf, _) => stack(chains.Select(c => c.Fields.GetTree(name)[leaf]).ToArray()).DetachFromDisposeScope()),
                var other => other,
            });
        }
        return (TState)first.Create(fields);
    }

    /// <summary>The fields every state starts with: a copy of <paramref name="parameters"/>, step 0, a NaN log density.</summary>
    internal static StateRecord NewFields(string kind, int kindVersion, ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var fields = new StateRecord { Kind = kind, KindVersion = kindVersion };
        fields.Set(ParamsField, parameters.Map(StateRecord.Own));
        fields.Set(StepField, 0L);
        fields.Set(LogPosteriorField, TransformExtensions.NotYetEvaluated(parameters).DetachFromDisposeScope());
        return fields;
    }

    /// <summary>
    /// A loaded record checked against the fields a kind declares (the common three are always required), so that a
    /// file missing a field fails at load with the field's name rather than at the first update.
    /// </summary>
    internal static StateRecord Checked(StateRecord record, params (string Name, Type Type)[] fields)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Require(new[] { (ParamsField, typeof(ParameterTree)), (StepField, typeof(long)), (LogPosteriorField, typeof(Tensor)) }.Concat(fields));
        return record;
    }

    /// <summary>The field names of format version 1 that later versions spell differently (one spelling for every kind).</summary>
    internal static StateRecord RenameVersion1Fields(StateRecord record) =>
        record.Rename("mean", ParamsField).Rename("logPosterior", LogPosteriorField).Rename("objective", LogPosteriorField).Rename("logSd", "log_sd");
}
