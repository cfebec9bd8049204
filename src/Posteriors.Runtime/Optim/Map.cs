using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Optim;

/// <summary>
/// MAP estimation with an <see cref="Optimizer"/> (SGD with momentum or Adam, docs/ALGORITHMS.md §3.1) whose moments
/// are tensors in the state: maximises a log posterior. For any other TorchSharp optimizer use <see cref="TorchOptim"/>.
/// </summary>
public static class Map
{
    /// <summary>Builds a transform that maximises <paramref name="logPosterior"/>.</summary>
    /// <param name="logPosterior">The objective to maximise.</param>
    /// <param name="optimizer">The optimizer, e.g. <c>Optimizer.Adam(lr: 1e-3)</c>.</param>
    public static Map<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Optimizer optimizer) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)), optimizer ?? throw new ArgumentNullException(nameof(optimizer)));
}

/// <summary>The state of <see cref="Map{TBatch}"/>: the parameters and the optimizer's moments ("params.&lt;moment&gt;").</summary>
public sealed class MapState : AlgorithmState, IPersistentState<MapState>
{
    private MapState(StateRecord fields) : base(fields) { }

    internal static MapState New(ParameterTree parameters, Optimizer optimizer)
    {
        var fields = NewFields(Kind, KindVersion, parameters);
        optimizer.AddMoments(fields, ParamsField);
        return new MapState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new MapState(fields);

    /// <inheritdoc />
    public static string Kind => "Map";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public static MapState ReadFrom(StateRecord record) => new(Checked(record));
}

/// <summary>MAP with a functional optimizer. See <see cref="Map"/>.</summary>
public sealed class Map<TBatch> : ITransform<MapState, TBatch>
{
    private readonly LogPosterior<TBatch> _logPosterior;
    private readonly Optimizer _optimizer;

    internal Map(LogPosterior<TBatch> logPosterior, Optimizer optimizer) => (_logPosterior, _optimizer) = (logPosterior, optimizer);

    /// <inheritdoc />
    public MapState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return MapState.New(parameters, _optimizer);
    }

    /// <summary>One optimizer step uphill on <paramref name="batch"/>'s log posterior.</summary>
    public MapState Update(MapState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var next = AlgorithmState.Target(state, inplace);
        using var scope = NewDisposeScope();
        var (value, aux, gradient) = Autodiff.ValueAndGrad(_logPosterior, state.Params, batch);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, gradient);
        _optimizer.Step(next.Fields, AlgorithmState.ParamsField, gradient.Leaves.Select(g => g.neg()).ToList(), state.Step + 1);   // minimise −log π
        return AlgorithmState.Finish(next, value, aux);
    }
}
