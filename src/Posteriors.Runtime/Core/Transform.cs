using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>What every algorithm's state exposes.</summary>
public interface IAlgorithmState
{
    /// <summary>The current parameters θ (for Gaussian methods, the mean).</summary>
    ParameterTree Params { get; }

    /// <summary>Number of updates applied since <c>Init</c>; schedules are evaluated at this value.</summary>
    long Step { get; }

    /// <summary>The log posterior at the last update (a detached scalar tensor; NaN before the first update).</summary>
    Tensor LogPosterior { get; }

    /// <summary>
    /// The auxiliary output (<see cref="LogDensityResult.Aux"/>, e.g. logits) of the log posterior's evaluation in the
    /// last update, detached; <c>null</c> before the first update or when the log posterior returns none. Not saved.
    /// </summary>
    Tensor? Aux { get; }
}

/// <summary>
/// The one shape of every algorithm (docs/ALGORITHMS.md): built from a log posterior and hyperparameters, then
/// <see cref="Init"/> on parameters and <see cref="Update"/> once per mini-batch.
/// </summary>
/// <typeparam name="TState">The algorithm's state.</typeparam>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public interface ITransform<TState, in TBatch> where TState : IAlgorithmState
{
    /// <summary>
    /// A fresh state at <paramref name="parameters"/>. The state owns copies; the given tensors are not modified later.
    /// Step t of a stochastic algorithm draws its noise from the stream of (<paramref name="seed"/>, t); deterministic
    /// algorithms (Laplace, EKF, MAP) have no noise and ignore the seed.
    /// </summary>
    TState Init(ParameterTree parameters, long seed = 0);

    /// <summary>
    /// Advances <paramref name="state"/> by one step on <paramref name="batch"/>. With <paramref name="inplace"/> the
    /// given state's tensors are overwritten and the same object is returned; otherwise the given state is left as
    /// it was and a new one is returned. Both forms give bit-identical results.
    /// </summary>
    TState Update(TState state, TBatch batch, bool inplace = false);
}

/// <summary>Conveniences shared by all transforms.</summary>
public static class TransformExtensions
{
    /// <summary>Runs <paramref name="steps"/> in-place updates, one per batch drawn from <paramref name="batches"/>.</summary>
    public static TState Run<TState, TBatch>(this ITransform<TState, TBatch> transform, TState state,
        IEnumerable<TBatch> batches, long steps = long.MaxValue)
        where TState : IAlgorithmState
    {
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentNullException.ThrowIfNull(batches);
        long done = 0;
        foreach (var batch in batches)
        {
            if (done++ >= steps) break;
            using var scope = NewDisposeScope();
            state = transform.Update(state, batch, inplace: true);
        }
        return state;
    }

    /// <summary>A scalar NaN tensor on the parameters' device: the log posterior of a state not yet updated.</summary>
    public static Tensor NotYetEvaluated(ParameterTree parameters) =>
        full(Array.Empty<long>(), double.NaN, dtype: parameters.ScalarType is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64 ? parameters.ScalarType : ScalarType.Float32,
            device: parameters.Device);
}
