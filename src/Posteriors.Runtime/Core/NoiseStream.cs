using System.Runtime.InteropServices;

namespace Posteriors;

/// <summary>
/// The generator of the samplers' step noise on the CPU. Both are counter-based: the normal at position p of the
/// flattened tree at step t of chain stream s of seed k is a pure function of (k, s, t, p), so leaves can be filled in
/// any order, on any number of threads, in place or into a copy, and a saved state resumes bit-identically. A state
/// records the generator it was initialised with and keeps it when saved and loaded; states saved before the choice
/// existed load as <see cref="PhiloxBoxMuller"/>, the generator that wrote them.
/// </summary>
public enum NoiseStream
{
    /// <summary>
    /// Philox-4×32-10 words for every normal and a float32 Box–Muller transform without fused multiply–adds: the noise
    /// of the first releases, kept so that their results stay reproducible.
    /// </summary>
    PhiloxBoxMuller = 1,

    /// <summary>
    /// The default: Philox-4×32-10 keys 32 xoshiro128++ generators per block of 4,096 positions, and a Box–Muller
    /// transform with fused multiply–adds turns their words into normals; about twice as fast.
    /// </summary>
    PhiloxXoshiro = 2,
}

/// <summary>The normals of one chain stream: the generator and its key (<see cref="Rng.NoiseKey"/>).</summary>
internal readonly record struct StepNoise(NoiseStream Stream, ulong Key)
{
    /// <summary>The generator of states created without a choice.</summary>
    public const NoiseStream Default = NoiseStream.PhiloxXoshiro;

    /// <summary>Normals number <paramref name="start"/>, <paramref name="start"/> + 1, … of <paramref name="step"/> into <paramref name="destination"/>.</summary>
    public void Normals<T>(long step, long start, Span<T> destination) where T : unmanaged
    {
        var isDouble = typeof(T) == typeof(double);
        if (!isDouble && typeof(T) != typeof(float)) throw new NotSupportedException($"Normals are float or double, not {typeof(T).Name}.");
        var singles = MemoryMarshal.Cast<T, float>(destination);
        var doubles = MemoryMarshal.Cast<T, double>(destination);
        switch (Stream)
        {
            case NoiseStream.PhiloxBoxMuller when isDouble: Philox.Normals(Key, step, start, doubles); break;
            case NoiseStream.PhiloxBoxMuller: Philox.Normals(Key, step, start, singles); break;
            case NoiseStream.PhiloxXoshiro when isDouble: PhiloxXoshiro.Normals(Key, step, start, doubles); break;
            case NoiseStream.PhiloxXoshiro: PhiloxXoshiro.Normals(Key, step, start, singles); break;
            default: throw new ArgumentOutOfRangeException(nameof(Stream), Stream, "Not a noise stream of this library.");
        }
    }
}
