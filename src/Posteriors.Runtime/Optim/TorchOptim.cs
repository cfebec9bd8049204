using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Optim;

/// <summary>
/// MAP estimation with any TorchSharp optimizer (SGD, Adam, AdamW, …) in the common <see cref="ITransform{TState, TBatch}"/>
/// shape: maximises a log posterior (or minimises a loss).
/// </summary>
public static class TorchOptim
{
    /// <summary>Builds a transform that maximises <paramref name="logPosterior"/>.</summary>
    /// <param name="logPosterior">The objective to maximise.</param>
    /// <param name="optimizer">Creates the optimizer over the state's parameters, e.g. <c>ps =&gt; torch.optim.AdamW(ps, lr: 1e-3)</c>.</param>
    public static TorchOptim<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior,
        Func<IEnumerable<Parameter>, optim.Optimizer> optimizer) => new(logPosterior, optimizer, maximize: true);

    /// <summary>Builds a transform that minimises <paramref name="loss"/>.</summary>
    public static TorchOptim<TBatch> Minimize<TBatch>(LogPosterior<TBatch> loss,
        Func<IEnumerable<Parameter>, optim.Optimizer> optimizer) => new(loss, optimizer, maximize: false);
}

/// <summary>The state of <see cref="TorchOptim{TBatch}"/>: parameters, the optimizer that owns their moments, and the step.</summary>
public sealed class TorchOptimState : IAlgorithmState, IPersistentState<TorchOptimState>
{
    internal TorchOptimState(ParameterTree parameters, optim.Optimizer? optimizer, long step, Tensor objective, byte[]? pendingOptimizerState)
    {
        Params = parameters;
        Optimizer = optimizer;
        Step = step;
        LogPosterior = objective;
        PendingOptimizerState = pendingOptimizerState;
    }

    /// <summary>The parameters, as TorchSharp <see cref="Parameter"/> leaves the optimizer updates.</summary>
    public ParameterTree Params { get; }

    /// <summary>The optimizer; <c>null</c> for a loaded state until its first update recreates it.</summary>
    public optim.Optimizer? Optimizer { get; internal set; }

    /// <inheritdoc />
    public long Step { get; internal set; }

    /// <summary>The objective at the last update: the log posterior when maximising, the loss when minimising.</summary>
    public Tensor LogPosterior { get; internal set; }

    internal byte[]? PendingOptimizerState { get; set; }

    /// <inheritdoc />
    public static string Kind => "TorchOptim";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        record.Set("params", Params);
        record.Set("step", Step);
        record.Set("objective", LogPosterior);
        var bytes = Optimizer is null ? PendingOptimizerState ?? Array.Empty<byte>() : TorchOptim<object>.SaveOptimizer(Optimizer);
        record.Set("optimizer", tensor(bytes, dtype: ScalarType.Byte));
    }

    /// <inheritdoc />
    public static TorchOptimState ReadFrom(StateRecord record)
    {
        var parameters = record.GetTree("params").Map(t => (Tensor)new Parameter(t, requires_grad: true));
        var bytes = record.GetTensor("optimizer").bytes.ToArray();
        return new TorchOptimState(parameters, null, record.GetLong("step"), record.GetTensor("objective"), bytes);
    }
}

/// <summary>MAP optimisation through a TorchSharp optimizer. See <see cref="TorchOptim"/>.</summary>
public sealed class TorchOptim<TBatch> : ITransform<TorchOptimState, TBatch>
{
    private readonly LogPosterior<TBatch> _objective;
    private readonly Func<IEnumerable<Parameter>, optim.Optimizer> _factory;
    private readonly bool _maximize;

    internal TorchOptim(LogPosterior<TBatch> objective, Func<IEnumerable<Parameter>, optim.Optimizer> factory, bool maximize)
    {
        _objective = objective ?? throw new ArgumentNullException(nameof(objective));
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        _maximize = maximize;
    }

    /// <inheritdoc />
    public TorchOptimState Init(ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var owned = parameters.Map(t => (Tensor)new Parameter(t.detach().clone(), requires_grad: true));
        return new TorchOptimState(owned, CreateOptimizer(owned), 0, TransformExtensions.NotYetEvaluated(parameters), null);
    }

    /// <summary>
    /// One optimizer step. The copying form clones the parameters and the optimizer's moments (through its state
    /// dictionary) and steps the clone, so the given state is untouched.
    /// </summary>
    public TorchOptimState Update(TorchOptimState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var target = inplace ? state : Copy(state);
        if (target.Optimizer is null)
        {
            target.Optimizer = CreateOptimizer(target.Params);
            if (target.PendingOptimizerState is { Length: > 0 } pending) LoadOptimizer(target.Optimizer, pending);
            target.PendingOptimizerState = null;
        }

        using (var scope = NewDisposeScope())
        {
            var (value, _, gradient) = Autodiff.ValueAndGrad(_objective, target.Params, batch);
            NonFiniteException.ThrowIfNotFinite(target.Step, value, gradient);
            using (no_grad())
            {
                for (var i = 0; i < gradient.Count; i++)
                {
                    var g = _maximize ? gradient.Leaves[i].neg() : gradient.Leaves[i];
                    target.Params.Leaves[i].grad = g.DetachFromDisposeScope();
                }
            }
            target.Optimizer.step();
            if (inplace) target.LogPosterior.copy_(value);
            else target.LogPosterior = value.clone().MoveToOuterDisposeScope();
        }
        target.Step++;
        return target;
    }

    private TorchOptimState Copy(TorchOptimState state)
    {
        var parameters = state.Params.Map(t => (Tensor)new Parameter(t.detach().clone(), requires_grad: true));
        var optimizer = CreateOptimizer(parameters);
        var saved = state.Optimizer is null ? state.PendingOptimizerState : SaveOptimizer(state.Optimizer);
        if (saved is { Length: > 0 }) LoadOptimizer(optimizer, saved);
        return new TorchOptimState(parameters, optimizer, state.Step, state.LogPosterior.clone(), null);
    }

    private optim.Optimizer CreateOptimizer(ParameterTree parameters) =>
        _factory(parameters.Leaves.Cast<Parameter>()) ?? throw new InvalidOperationException("The optimizer factory returned null.");

    internal static byte[] SaveOptimizer(optim.Optimizer optimizer)
    {
        if (optimizer is not OptimizerHelper helper)
            throw new NotSupportedException($"Optimizer {optimizer.GetType().Name} cannot save its state; use a built-in TorchSharp optimizer.");
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) helper.save_state_dict(writer);
        return stream.ToArray();
    }

    internal static void LoadOptimizer(optim.Optimizer optimizer, byte[] bytes)
    {
        if (optimizer is not OptimizerHelper helper)
            throw new NotSupportedException($"Optimizer {optimizer.GetType().Name} cannot load a saved state.");
        using var reader = new BinaryReader(new MemoryStream(bytes));
        helper.load_state_dict(reader);
    }
}
