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

/// <summary>
/// The state of <see cref="TorchOptim{TBatch}"/>: the parameters, the step, the objective, and the live TorchSharp
/// optimizer that owns the moments (saved, and carried into copies, as its own bytes in the field "optimizer").
/// </summary>
public sealed class TorchOptimState : AlgorithmState, IPersistentState<TorchOptimState>
{
    private TorchOptimState(StateRecord fields) : base(fields) { }

    internal static TorchOptimState New(ParameterTree parameters)
    {
        var fields = NewFields(Kind, KindVersion, parameters);
        fields.Set("optimizer", tensor(Array.Empty<byte>(), dtype: ScalarType.Byte).DetachFromDisposeScope());
        return new TorchOptimState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new TorchOptimState(fields);

    /// <summary>The live optimizer; <c>null</c> for a loaded or copied state until its first update recreates it from the saved bytes.</summary>
    public optim.Optimizer? Optimizer { get; internal set; }

    private protected override void Sync()
    {
        if (Optimizer is null) return;
        Fields.GetTensor("optimizer").Dispose();
        Fields.Set("optimizer", tensor(TorchOptim<object>.SaveOptimizer(Optimizer), dtype: ScalarType.Byte).DetachFromDisposeScope());
    }

    /// <inheritdoc />
    public static string Kind => "TorchOptim";

    /// <inheritdoc />
    /// <remarks>Version 1 spelled the objective "objective".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static TorchOptimState ReadFrom(StateRecord record) =>
        new(Checked(RenameVersion1Fields(record), ("optimizer", typeof(Tensor))));
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
    public TorchOptimState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var state = TorchOptimState.New(parameters);
        Attach(state);
        return state;
    }

    /// <summary>
    /// One optimizer step. The copying form steps a copy whose optimizer is rebuilt from the given one's saved bytes, so
    /// the given state is untouched.
    /// </summary>
    public TorchOptimState Update(TorchOptimState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var next = AlgorithmState.Target(state, inplace);
        if (next.Optimizer is null) Attach(next);
        using var scope = NewDisposeScope();
        var (value, aux, gradient) = Autodiff.ValueAndGrad(_objective, next.Params, batch);
        NonFiniteException.ThrowIfNotFinite(next.Step, value, gradient);
        using (no_grad())
        {
            for (var i = 0; i < gradient.Count; i++)
            {
                var g = _maximize ? gradient.Leaves[i].neg() : gradient.Leaves[i];
                next.Params.Leaves[i].grad = g.DetachFromDisposeScope();
            }
        }
        next.Optimizer!.step();
        return AlgorithmState.Finish(next, value, aux);
    }

    /// <summary>Turns the state's parameter tensors into TorchSharp Parameters (which take over their handles) and gives it an optimizer over them, restored from its saved bytes.</summary>
    private void Attach(TorchOptimState state)
    {
        var parameters = state.Params.Map(t => (Tensor)new Parameter(t, requires_grad: true));
        state.Fields.Set(AlgorithmState.ParamsField, parameters);
        var optimizer = _factory(parameters.Leaves.Cast<Parameter>()) ?? throw new InvalidOperationException("The optimizer factory returned null.");
        var saved = state.Fields.GetTensor("optimizer").bytes.ToArray();
        if (saved.Length > 0) LoadOptimizer(optimizer, saved);
        state.Optimizer = optimizer;
    }

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
