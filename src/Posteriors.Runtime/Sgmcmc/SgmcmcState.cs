using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// What every SGMCMC state holds besides its sampler's own fields: the parameters θ, the step counter, the last log
/// posterior, the seed of the counter-based noise stream (step t of chain k draws from stream k of (Seed, t), see
/// <see cref="Rng.NormalInto"/>) and the generator that makes it (<see cref="NoiseStream"/>).
/// </summary>
public abstract class SgmcmcState : AlgorithmState
{
    private protected SgmcmcState(StateRecord fields) : base(fields) { }

    /// <summary>The field of <see cref="NoiseStream"/>, saved as an integer.</summary>
    internal const string NoiseStreamField = "noise_stream";

    /// <summary>The seed of this chain's noise stream.</summary>
    public long Seed => Fields.GetLong(SeedField);

    /// <summary>
    /// The generator of this chain's step noise on the CPU: the sampler's <see cref="SgmcmcSampler{TState, TBatch}.NoiseStream"/>
    /// when the state was initialised, kept through updates, saving and loading (a file written before the field existed
    /// loads as <see cref="NoiseStream.PhiloxBoxMuller"/>, the generator that wrote it).
    /// </summary>
    public NoiseStream NoiseStream
    {
        get => (NoiseStream)Fields.GetLong(NoiseStreamField);
        internal set => Fields.Set(NoiseStreamField, (long)value);
    }

    /// <summary>The fields every SGMCMC state starts with (<see cref="AlgorithmState.NewFields"/>, the seed and the default generator).</summary>
    internal static StateRecord NewFields(string kind, int kindVersion, ParameterTree parameters, long seed)
    {
        var fields = AlgorithmState.NewFields(kind, kindVersion, parameters);
        fields.Set(SeedField, seed);
        fields.Set(NoiseStreamField, (long)StepNoise.Default);
        return fields;
    }

    /// <summary>
    /// A loaded record checked for the common fields, the seed, the generator and <paramref name="fields"/>; a record of
    /// layout version 1 (before the generator was saved) gets <see cref="NoiseStream.PhiloxBoxMuller"/>, which wrote it.
    /// </summary>
    /// <exception cref="InvalidDataException">A field is missing or has another type, or the generator is not one of this library.</exception>
    internal static StateRecord CheckedWithSeed(StateRecord record, params (string Name, Type Type)[] fields)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.KindVersion < 2 && !record.Has(NoiseStreamField)) record.Set(NoiseStreamField, (long)NoiseStream.PhiloxBoxMuller);
        var checkedRecord = Checked(record, fields.Prepend((NoiseStreamField, typeof(long))).Prepend((SeedField, typeof(long))).ToArray());
        var noiseStream = checkedRecord.GetLong(NoiseStreamField);
        if (!Enum.IsDefined((NoiseStream)noiseStream))
            throw new InvalidDataException($"Field '{NoiseStreamField}' of the saved {record.Kind} state is {noiseStream}, not a noise stream of this library " +
                                           $"({string.Join(", ", Enum.GetValues<NoiseStream>().Select(v => $"{(int)v} = {v}"))}).");
        return checkedRecord;
    }
}

/// <summary>The state of a sampler with momenta (SGHMC, SGNHT, BAOA): the common fields and the momenta m.</summary>
public abstract class MomentumState : SgmcmcState
{
    private protected MomentumState(StateRecord fields) : base(fields) { }

    /// <summary>The momenta m, shaped like the parameters.</summary>
    public ParameterTree Momenta => Fields.GetTree("momenta");

    /// <summary>The fields every momentum state starts with.</summary>
    internal static StateRecord NewFields(string kind, int kindVersion, ParameterTree parameters, ParameterTree momenta, long seed)
    {
        var fields = NewFields(kind, kindVersion, parameters, seed);
        fields.Set("momenta", momenta);
        return fields;
    }

    /// <summary>A loaded record checked for the common fields, the seed, the momenta and <paramref name="fields"/>.</summary>
    internal static StateRecord CheckedWithMomenta(StateRecord record, params (string Name, Type Type)[] fields) =>
        CheckedWithSeed(record, fields.Prepend(("momenta", typeof(ParameterTree))).ToArray());
}

/// <summary>
/// What every sampler of docs/ALGORITHMS.md §2 shares: the update (evaluate the gradient at θ, apply the sampler's rule
/// in place to the state or to its copy, record the value, auxiliary output and step) and the seeded initialisation.
/// Each sampler supplies its state's fields (<see cref="InitChain"/>) and its rule (<see cref="Move"/>); an
/// <see cref="Ensembles.Ensemble{TState, TBatch}"/> applies the same rule to every chain of a stacked state.
/// </summary>
/// <typeparam name="TState">The sampler's state.</typeparam>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public abstract class SgmcmcSampler<TState, TBatch> : ITransform<TState, TBatch> where TState : SgmcmcState
{
    private protected SgmcmcSampler(LogPosterior<TBatch> logPosterior) =>
        LogPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));

    /// <summary>The log posterior the sampler differentiates.</summary>
    internal LogPosterior<TBatch> LogPosterior { get; }

    /// <summary>The counter-based generators of this sampler.</summary>
    private protected Rng Rng { get; } = new();

    /// <summary>
    /// The generator of the step noise of the states this sampler initialises (<see cref="NoiseStream.PhiloxXoshiro"/>
    /// unless set). A state keeps the generator it was initialised with (<see cref="SgmcmcState.NoiseStream"/>), so a
    /// loaded state resumes with its own whatever this is.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not a <see cref="Posteriors.NoiseStream"/>.</exception>
    public NoiseStream NoiseStream
    {
        get => _noiseStream;
        set => _noiseStream = Check.Defined(value, nameof(NoiseStream));
    }

    private NoiseStream _noiseStream = StepNoise.Default;

    /// <inheritdoc />
    public TState Init(ParameterTree parameters, long seed = 0) => NewChain(parameters, seed, stream: 0);

    /// <inheritdoc />
    /// <exception cref="NonFiniteException">The log posterior or its gradient is NaN or infinite; the message names the step and the parameter.</exception>
    public TState Update(TState state, TBatch batch, bool inplace = false) => Step(state, batch, inplace, chain: null);

    /// <summary>
    /// Chain <paramref name="chain"/> of an ensemble, held on its own (on another machine, say): its initial state,
    /// equal to row <paramref name="chain"/> of <see cref="Ensembles.Ensemble{TState, TBatch}.Init(ParameterTree, long)"/>
    /// for the same <paramref name="seed"/> (its own noise stream, momenta and thermostat).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chain"/> is negative.</exception>
    public TState InitMember(ParameterTree parameters, long seed, int chain) =>
        chain >= 0 ? NewChain(parameters, seed, chain) : throw new ArgumentOutOfRangeException(nameof(chain), chain, "A chain index is 0 or more.");

    /// <summary>
    /// One step of chain <paramref name="chain"/> held on its own: bit for bit what
    /// <see cref="Ensembles.Ensemble{TState, TBatch}.Update"/> computes for that row (noise from stream
    /// <paramref name="chain"/> of the state's seed).
    /// </summary>
    /// <exception cref="NonFiniteException">The log posterior or its gradient is NaN or infinite; the message names the chain, step and parameter.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chain"/> is negative.</exception>
    public TState UpdateMember(TState state, TBatch batch, int chain, bool inplace = false) =>
        chain >= 0 ? Step(state, batch, inplace, chain) : throw new ArgumentOutOfRangeException(nameof(chain), chain, "A chain index is 0 or more.");

    private TState Step(TState state, TBatch batch, bool inplace, int? chain)
    {
        var next = AlgorithmState.Target(state, inplace);
        using var scope = NewDisposeScope();
        var (value, aux, grad) = SgmcmcStep.Gradient(LogPosterior, state.Params, state.Step, batch, chain);
        Move(next, grad, state.Step, state.Seed, stream: chain ?? 0);
        return AlgorithmState.Finish(next, value, aux);
    }

    /// <summary>A fresh state of chain stream <paramref name="stream"/> (<see cref="InitChain"/>) with this sampler's <see cref="NoiseStream"/>.</summary>
    internal TState NewChain(ParameterTree parameters, long seed, int stream)
    {
        var state = InitChain(parameters, seed, stream);
        state.NoiseStream = NoiseStream;
        return state;
    }

    /// <summary>A fresh state at <paramref name="parameters"/>; random initial values come from stream <paramref name="stream"/> of the seed.</summary>
    internal abstract TState InitChain(ParameterTree parameters, long seed, int stream);

    /// <summary>
    /// The sampler's rule: moves <paramref name="chain"/> in place given g = ∇ log π at its old θ, with the
    /// hyperparameters of <paramref name="step"/> and noise from stream <paramref name="stream"/> of
    /// (<paramref name="seed"/>, <paramref name="step"/>). <paramref name="grad"/> is consumed (its buffers may receive
    /// the noise).
    /// </summary>
    internal abstract void Move(TState chain, ParameterTree grad, long step, long seed, int stream);
}

/// <summary>The arithmetic the samplers' rules share.</summary>
internal static class SgmcmcStep
{
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

    /// <summary>Standard normal noise shaped like <paramref name="like"/>, from the step's generator.</summary>
    public static Tensor Normal(Tensor like, Generator generator) =>
        randn(like.shape, dtype: like.dtype, device: like.device, generator: generator);

    /// <summary>
    /// <paramref name="scale"/> × the step's standard normal noise for the leaf at <paramref name="offset"/>, shaped like
    /// <paramref name="spent"/> and written into that buffer when it is contiguous (a gradient already used saves a
    /// parameter-sized allocation); a strided buffer (the gradient of a transposed weight) would make the addition slow,
    /// so it gets a fresh one.
    /// </summary>
    public static Tensor ScaledNormalInto(Tensor spent, double scale, Rng rng, long seed, long step, int stream, long offset, NoiseStream noiseStream)
    {
        var into = spent.is_contiguous() ? spent : empty(spent.shape, dtype: spent.dtype, device: spent.device);
        rng.NormalInto(into, seed, step, stream, offset, noiseStream);
        return into.mul_(scale);
    }

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
}
