using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// What every SGMCMC state holds: the parameters θ, the step counter, the last log posterior and the seed of the
/// counter-based noise stream (step t draws from <c>Rng.For(Seed, t)</c>).
/// </summary>
public abstract class SgmcmcState : IAlgorithmState
{
    /// <summary>Creates the common part of a state.</summary>
    protected SgmcmcState(ParameterTree parameters, long step, Tensor logPosterior, long seed)
    {
        Params = parameters ?? throw new ArgumentNullException(nameof(parameters));
        LogPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        Step = step;
        Seed = seed;
    }

    /// <inheritdoc />
    public ParameterTree Params { get; }

    /// <inheritdoc />
    public long Step { get; internal set; }

    /// <inheritdoc />
    public Tensor LogPosterior { get; }

    /// <summary>The seed of this chain's noise stream.</summary>
    public long Seed { get; }

    /// <summary>Every tensor the update overwrites, in a fixed order (parameters first).</summary>
    internal abstract IEnumerable<Tensor> Tensors { get; }

    /// <summary>Writes the fields every SGMCMC state has.</summary>
    protected void WriteCommon(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Set("params", Params);
        record.Set("step", Step);
        record.Set("log_posterior", LogPosterior);
        record.Set("seed", Seed);
    }

    /// <summary>Reads the fields every SGMCMC state has.</summary>
    protected static (ParameterTree Params, long Step, Tensor LogPosterior, long Seed) ReadCommon(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return (record.GetTree("params"), record.GetLong("step"), record.GetTensor("log_posterior"), record.GetLong("seed"));
    }
}

/// <summary>The plumbing every SGMCMC update shares, so that each sampler file holds only its equations.</summary>
internal static class SgmcmcStep
{
    /// <summary>
    /// The state that the update writes into: the given one (in place) or a deep copy of it (copying). Both then go
    /// through the same in-place arithmetic, which is what makes the two forms bit-identical.
    /// </summary>
    public static TState Target<TState>(TState state, bool inplace, Func<TState, TState> copy) where TState : SgmcmcState
    {
        ArgumentNullException.ThrowIfNull(state);
        return inplace ? state : copy(state);
    }

    /// <summary>log π and ∇ log π at θ, checked for NaN/Inf (the exception names the step and the parameter).</summary>
    public static ValueAndGradient Gradient<TBatch>(LogPosterior<TBatch> logPosterior, SgmcmcState state, TBatch batch) =>
        Gradient(logPosterior, state.Params, state.Step, batch);

    /// <summary>
    /// log π and ∇ log π at <paramref name="parameters"/>, checked for NaN/Inf at <paramref name="step"/>; for chain k
    /// of an ensemble (<paramref name="chain"/>) the exception's message starts with "Chain k: ".
    /// </summary>
    public static ValueAndGradient Gradient<TBatch>(LogPosterior<TBatch> logPosterior, ParameterTree parameters, long step, TBatch batch,
        int? chain = null)
    {
        var result = Autodiff.ValueAndGrad(logPosterior, parameters, batch);
        try { NonFiniteException.ThrowIfNotFinite(step, result.Value, result.Gradient); }
        catch (NonFiniteException e) when (chain is not null) { throw new NonFiniteException($"Chain {chain}: {e.Message}", e.Step, e.ParameterName); }
        return result;
    }

    /// <summary>Records the log posterior and advances the step counter.</summary>
    public static TState Finish<TState>(TState target, Tensor value) where TState : SgmcmcState
    {
        using (no_grad()) target.LogPosterior.copy_(value);
        target.Step++;
        return target;
    }

    /// <summary>Standard normal noise shaped like <paramref name="like"/>, from the step's generator.</summary>
    public static Tensor Normal(Tensor like, Generator generator) =>
        randn(like.shape, dtype: like.dtype, device: like.device, generator: generator);

    /// <summary>
    /// <paramref name="scale"/> × standard normal noise shaped like <paramref name="spent"/>, written into that buffer when
    /// it is contiguous (a gradient already used saves a parameter-sized allocation); a strided buffer (the gradient of a
    /// transposed weight) would make the draw and the addition slow, so it gets a fresh one.
    /// </summary>
    public static Tensor ScaledNormalInto(Tensor spent, double scale, Generator generator) =>
        spent.is_contiguous() ? spent.normal_(0, scale, generator) : Normal(spent, generator).mul_(scale);

    /// <summary>
    /// sqrt(T ε (2c − T ε β)): the noise scale shared by SGLD (c = 1), SGHMC and SGNHT (c = α). Zero at T = 0 with no
    /// division by T; a negative radicand (β too large for this ε and T) is an error, never clamped.
    /// </summary>
    public static double NoiseScale(double temperature, double lr, double c, double beta, long step)
    {
        var radicand = temperature * lr * (2 * c - temperature * lr * beta);
        if (radicand < 0)
            throw new ArgumentOutOfRangeException(nameof(beta), beta,
                $"At step {step} the noise variance T·lr·(2·{c} − T·lr·beta) = {radicand} is negative (T = {temperature}, lr = {lr}); " +
                "lower 'beta' or 'lr'.");
        return Math.Sqrt(radicand);
    }

    /// <summary>A deep copy of a tree, owned by the caller (not by any dispose scope).</summary>
    public static ParameterTree Own(ParameterTree tree) => tree.Map(Own);

    /// <summary>A deep copy of a tensor, owned by the caller; the intermediate detached view is disposed at once.</summary>
    public static Tensor Own(Tensor t)
    {
        using var view = t.detach();
        return view.clone().DetachFromDisposeScope();
    }
}
