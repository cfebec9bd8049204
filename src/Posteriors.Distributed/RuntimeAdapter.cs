using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Distributed;

/// <summary>
/// Everything the distributed layer needs from the runtime, in one place: building a member's sampler from a
/// <see cref="SamplerSpec"/> (SGLD, SGHMC, SGNHT, BAOA or SGLRW), stepping member k exactly as
/// <see cref="Ensembles.Ensemble{TState, TBatch}"/> steps chain k of its stacked state (gradient at the old position, the
/// sampler's move, noise from stream k of the run's seed), and state files as bytes. A grain holding member k therefore
/// computes bit for bit what row k of a single-process ensemble computes.
/// </summary>
public abstract class MemberSampler
{
    private protected MemberSampler() { }

    /// <summary>
    /// The sampler of <paramref name="spec"/> over <paramref name="logPosterior"/>; momenta (SGHMC, SGNHT, BAOA) start at
    /// zero, as in the ensemble.
    /// </summary>
    /// <exception cref="ArgumentException">A hyperparameter does not apply to the spec's sampler, or is out of range.</exception>
    public static MemberSampler Build(LogPosterior<(Tensor X, Tensor Y)> logPosterior, SamplerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(logPosterior);
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validated();
        var (lr, temperature) = (spec.Lr.ToSchedule(), spec.Temperature.ToSchedule());
        return spec.Kind switch
        {
            SamplerKind.Sgld => WithNoise(Sgld.Build(logPosterior, lr, spec.Beta, temperature), spec),
            SamplerKind.Sghmc => WithNoise(Sghmc.Build(logPosterior, lr, spec.Alpha, spec.Beta, spec.Sigma, temperature, InitialMomenta.Zero), spec),
            SamplerKind.Sgnht => WithNoise(Sgnht.Build(logPosterior, lr, spec.Alpha, spec.Beta, spec.Sigma, temperature, InitialMomenta.Zero, spec.Xi), spec),
            SamplerKind.Baoa => WithNoise(Baoa.Build(logPosterior, lr, spec.Alpha, spec.Sigma, temperature, InitialMomenta.Zero), spec),
            SamplerKind.Sglrw => WithNoise(Sglrw.Build(logPosterior, lr, temperature), spec),
            _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "Unknown sampler kind."),
        };
    }

    /// <summary>The adapter of <paramref name="sampler"/>, whose fresh states get the spec's noise stream.</summary>
    private static Of<TState> WithNoise<TState>(SgmcmcSampler<TState, (Tensor X, Tensor Y)> sampler, SamplerSpec spec) where TState : SgmcmcState
    {
        sampler.NoiseStream = spec.NoiseStream;
        return new Of<TState>(sampler);
    }

    /// <summary>
    /// Member <paramref name="member"/>'s fresh state at <paramref name="parameters"/> (copied): row
    /// <paramref name="member"/> of the single-process ensemble's initial state for the run's <paramref name="seed"/>.
    /// </summary>
    public abstract SgmcmcState Init(ParameterTree parameters, long seed, int member);

    /// <summary>One in-place step of member <paramref name="member"/> on <paramref name="batch"/>.</summary>
    /// <exception cref="NonFiniteException">The log posterior or gradient is NaN or infinite (the message names the member and step).</exception>
    public abstract void Step(SgmcmcState state, (Tensor X, Tensor Y) batch, int member);

    /// <summary>
    /// The single-process reference this sampler reproduces member by member (tests, benchmarks, the CLI): K members
    /// initialised with <paramref name="initialise"/>(k), stacked.
    /// </summary>
    public abstract SgmcmcState InitEnsemble(int members, Func<int, ParameterTree> initialise, long seed);

    /// <summary>One in-place step of every member of <see cref="InitEnsemble"/>'s state, chain after chain.</summary>
    public abstract void StepEnsemble(SgmcmcState stacked, (Tensor X, Tensor Y) batch);

    /// <summary>The state as <see cref="StateFile"/> bytes (versioned and checksummed).</summary>
    /// <exception cref="ArgumentException">The state is not of a sampler a member can run.</exception>
    public static byte[] Save(SgmcmcState state) => state switch
    {
        SgldState s => StateBytes.Save(s),
        SghmcState s => StateBytes.Save(s),
        SgnhtState s => StateBytes.Save(s),
        BaoaState s => StateBytes.Save(s),
        SglrwState s => StateBytes.Save(s),
        null => throw new ArgumentNullException(nameof(state)),
        _ => throw new ArgumentException($"A member cannot hold a {state.GetType().Name}.", nameof(state)),
    };

    /// <summary>A state of <paramref name="kind"/> from <see cref="Save"/>'s bytes, on the CPU.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an intact state file of that sampler.</exception>
    public static SgmcmcState Load(SamplerKind kind, byte[] bytes) => kind switch
    {
        SamplerKind.Sgld => StateBytes.Load<SgldState>(bytes),
        SamplerKind.Sghmc => StateBytes.Load<SghmcState>(bytes),
        SamplerKind.Sgnht => StateBytes.Load<SgnhtState>(bytes),
        SamplerKind.Baoa => StateBytes.Load<BaoaState>(bytes),
        SamplerKind.Sglrw => StateBytes.Load<SglrwState>(bytes),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown sampler kind."),
    };

    private sealed class Of<TState>(SgmcmcSampler<TState, (Tensor X, Tensor Y)> sampler) : MemberSampler where TState : SgmcmcState
    {
        private readonly Ensembles.Ensemble<TState, (Tensor X, Tensor Y)> _ensemble = Ensembles.Ensemble.Of(sampler);

        public override SgmcmcState Init(ParameterTree parameters, long seed, int member) => sampler.InitMember(parameters, seed, member);

        public override void Step(SgmcmcState state, (Tensor X, Tensor Y) batch, int member) =>
            sampler.UpdateMember(Typed(state), batch, member, inplace: true);

        public override SgmcmcState InitEnsemble(int members, Func<int, ParameterTree> initialise, long seed) => _ensemble.Init(members, initialise, seed);

        public override void StepEnsemble(SgmcmcState stacked, (Tensor X, Tensor Y) batch) => _ensemble.Update(Typed(stacked), batch, inplace: true);

        private static TState Typed(SgmcmcState state) =>
            state as TState ?? throw new ArgumentException($"Expected a {typeof(TState).Name}; got {state?.GetType().Name ?? "null"}.", nameof(state));
    }
}

/// <summary><see cref="StateFile"/>'s format as a byte array (grain storage and messages carry bytes, not files).</summary>
public static class StateBytes
{
    /// <summary>The file <see cref="StateFile.Save{TState}"/> would write, as bytes.</summary>
    public static byte[] Save<TState>(TState state) where TState : Serialization.IPersistentState<TState>
    {
        var path = TempPath();
        try
        {
            StateFile.Save(path, state);
            return File.ReadAllBytes(path);
        }
        finally { File.Delete(path); }
    }

    /// <summary>A state from <see cref="Save{TState}"/>'s bytes, on the CPU.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an intact state file of that kind.</exception>
    public static TState Load<TState>(byte[] bytes) where TState : Serialization.IPersistentState<TState>
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var path = TempPath();
        try
        {
            File.WriteAllBytes(path, bytes);
            return StateFile.Load<TState>(path);
        }
        finally { File.Delete(path); }
    }

    private static string TempPath() => Path.Combine(Path.GetTempPath(), $"posteriors-{Guid.NewGuid():N}.state");
}

/// <summary>
/// Trees and tensors as the raw bytes of float32 values, the form parameters, gradients and precisions take on the wire:
/// Orleans copies a byte array in one block, where a float array goes element by element (measured: 20× the time of the
/// step itself for the MLP 784-512-512-10).
/// </summary>
public static class TreeWire
{
    /// <summary>The tree flattened in its order, as float32 bytes.</summary>
    public static byte[] ToBytes(ParameterTree tree)
    {
        ArgumentNullException.ThrowIfNull(tree);
        using var scope = NewDisposeScope();
        return ToBytes(tree.Flatten());
    }

    /// <summary>A tensor's values in row-major order, as float32 bytes.</summary>
    public static byte[] ToBytes(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        using var scope = NewDisposeScope();
        return t.detach().to(CPU).to_type(ScalarType.Float32).contiguous().bytes.ToArray();
    }

    /// <summary>The float32 values of <see cref="ToBytes(ParameterTree)"/>'s bytes.</summary>
    public static ReadOnlySpan<float> Floats(byte[] bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes);

    /// <summary>A 1-D float32 CPU tensor of the bytes' values.</summary>
    public static Tensor ToTensor(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length % sizeof(float) != 0) throw new ArgumentException($"{bytes.Length} bytes are not a whole number of float32 values.", nameof(bytes));
        var t = empty(bytes.Length / sizeof(float), dtype: ScalarType.Float32);
        t.bytes = bytes;
        return t;
    }

    /// <summary>A tree shaped like <paramref name="like"/> (its device and dtype) holding the values of <paramref name="bytes"/>.</summary>
    /// <exception cref="ArgumentException">The number of values differs from the tree's.</exception>
    public static ParameterTree FromBytes(byte[] bytes, ParameterTree like)
    {
        ArgumentNullException.ThrowIfNull(like);
        using var flat = ToTensor(bytes);
        if (flat.shape[0] != like.NumberOfElements)
            throw new ArgumentException($"Got {flat.shape[0]} values for a tree of {like.NumberOfElements}.", nameof(bytes));
        return like.Unflatten(flat.to(like.ScalarType).to(like.Device));
    }
}
