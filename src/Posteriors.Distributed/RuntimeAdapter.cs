using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Distributed;

/// <summary>
/// Everything the distributed layer needs from the runtime, in one place: building a member's sampler, stepping member
/// k exactly as <see cref="Ensembles.Ensemble{TBatch}"/> steps chain k of its stacked tree (gradient at the old
/// position, SGHMC's move, noise from stream k of the run's seed), and state files as bytes. A grain holding member k
/// therefore computes bit for bit what row k of a single-process ensemble computes.
/// </summary>
public sealed class MemberSampler
{
    private readonly Sghmc<(Tensor X, Tensor Y)> _sghmc;

    /// <summary>The sampler of <paramref name="spec"/> over <paramref name="logPosterior"/>; momenta start at zero, as in the ensemble.</summary>
    public MemberSampler(LogPosterior<(Tensor X, Tensor Y)> logPosterior, SamplerSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(logPosterior);
        _sghmc = Sghmc.Build(logPosterior, spec.Lr.ToSchedule(), spec.Alpha, spec.Beta, spec.Sigma, spec.Temperature.ToSchedule(), InitialMomenta.Zero);
    }

    /// <summary>The single-process ensemble this sampler reproduces member by member (the reference of tests and the CLI).</summary>
    public static Ensembles.Ensemble<(Tensor X, Tensor Y)> Ensemble(LogPosterior<(Tensor X, Tensor Y)> logPosterior, SamplerSpec spec) =>
        Ensembles.Ensemble.Build(logPosterior, spec.Lr.ToSchedule(), spec.Alpha, spec.Sigma, spec.Temperature.ToSchedule(), spec.Beta,
            InitialMomenta.Zero);

    /// <summary>
    /// Member <paramref name="member"/>'s fresh state at <paramref name="parameters"/> (copied): row
    /// <paramref name="member"/> of the single-process ensemble's initial state for the run's <paramref name="seed"/>.
    /// </summary>
    public SghmcState Init(ParameterTree parameters, long seed, int member) => _sghmc.InitMember(parameters, seed, member);

    /// <summary>One in-place step of member <paramref name="member"/> on <paramref name="batch"/>.</summary>
    /// <exception cref="NonFiniteException">The log posterior or gradient is NaN or infinite (the message names the member and step).</exception>
    public void Step(SghmcState state, (Tensor X, Tensor Y) batch, int member)
    {
        ArgumentNullException.ThrowIfNull(state);
        _sghmc.UpdateMember(state, batch, member, inplace: true);
    }

    /// <summary>The state as <see cref="StateFile"/> bytes (versioned and checksummed).</summary>
    public static byte[] Save(SghmcState state) => StateBytes.Save(state);

    /// <summary>A state from <see cref="Save"/>'s bytes, on the CPU.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an intact SGHMC state file.</exception>
    public static SghmcState Load(byte[] bytes) => StateBytes.Load<SghmcState>(bytes);
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
