using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>
/// Counter-based random streams: the noise of step t of a run seeded with s comes from a generator seeded with a
/// hash of (s, t). A state therefore carries its whole random future in two integers, so in-place and copying
/// updates draw the same numbers, saved states resume bit-identically, and chains with different seeds never share
/// a stream.
/// </summary>
/// <remarks>
/// The samplers' per-step noise on the CPU (<see cref="NormalInto"/>) comes from a counter-based generator
/// (<see cref="NoiseStream"/>) keyed by (seed, stream) with the step and the element's position in the flattened tree
/// as its counter: it is written straight into the tensor's storage, in any order, and does not depend on the number of
/// threads. On other devices it comes from torch's generator on that device, seeded with a hash of (seed, step, stream,
/// position).
/// </remarks>
public sealed class Rng
{
    private readonly Dictionary<string, Generator> _generators = new();

    /// <summary>A generator on <paramref name="device"/> positioned for (<paramref name="seed"/>, <paramref name="step"/>, <paramref name="stream"/>).</summary>
    /// <remarks>The generator is reused between calls; use it before the next call to this instance.</remarks>
    public Generator For(long seed, long step, Device device, int stream = 0)
    {
        var key = device.ToString();
        if (!_generators.TryGetValue(key, out var g))
        {
            g = new Generator(0, device);
            _generators[key] = g;
        }
        g.manual_seed(Mix(seed, step, stream));
        return g;
    }

    /// <summary>
    /// Fills <paramref name="into"/> with the standard normals of step <paramref name="step"/> of stream
    /// <paramref name="stream"/> of <paramref name="seed"/> whose positions in the flattened tree start at
    /// <paramref name="offset"/> (the leaf's offset, <see cref="Trees.ParameterTree.Layout"/>), so that no two leaves
    /// share draws, made by <paramref name="noiseStream"/> on the CPU.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="noiseStream"/> is not a <see cref="NoiseStream"/>.</exception>
    public void NormalInto(Tensor into, long seed, long step, int stream, long offset, NoiseStream noiseStream)
    {
        ArgumentNullException.ThrowIfNull(into);
        var noise = new StepNoise(Check.Defined(noiseStream, nameof(noiseStream)), NoiseKey(seed, stream));
        if (into.device_type != DeviceType.CPU)
        {
            into.normal_(0, 1, For(Mix(seed, step, stream), offset, into.device));
            return;
        }
        if (into.is_contiguous() && into.dtype is ScalarType.Float32 or ScalarType.Float64)
        {
            NormalsInto(into, noise, step, offset);
            return;
        }
        // Strided or half-precision leaves: the same draws, made in a contiguous buffer.
        using var buffer = empty(into.shape, dtype: into.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        NormalsInto(buffer, noise, step, offset);
        into.copy_(buffer);
    }

    /// <summary>The generator key of stream <paramref name="stream"/> of <paramref name="seed"/> (the same for every <see cref="NoiseStream"/>).</summary>
    internal static ulong NoiseKey(long seed, int stream) => (ulong)Mix(seed, 0, stream);

    /// <summary>The step noise of stream <paramref name="stream"/> of <paramref name="seed"/> made by <paramref name="noiseStream"/>.</summary>
    internal static StepNoise Noise(NoiseStream noiseStream, long seed, int stream) => new(noiseStream, NoiseKey(seed, stream));

    /// <summary>Normals into a contiguous float32 or float64 CPU tensor, a span of at most 2³¹ bytes at a time.</summary>
    private static void NormalsInto(Tensor contiguous, StepNoise noise, long step, long offset)
    {
        using var flat = contiguous.view(-1);
        var length = flat.shape[0];
        var chunk = int.MaxValue / (int)contiguous.element_size();
        for (long start = 0; start < length; start += chunk)
        {
            using var part = start == 0 && length <= chunk ? flat.alias() : flat.narrow(0, start, Math.Min(chunk, length - start));
            if (contiguous.dtype == ScalarType.Float64) noise.Normals(step, offset + start, MemoryMarshal.Cast<byte, double>(part.bytes));
            else noise.Normals(step, offset + start, MemoryMarshal.Cast<byte, float>(part.bytes));
        }
    }

    /// <summary>SplitMix64 of the seed, step and stream: decorrelates neighbouring seeds and steps.</summary>
    public static long Mix(long seed, long step, int stream = 0)
    {
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xC2B2AE3D27D4EB4FUL ^ (ulong)stream * 0x165667B19E3779F9UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (long)(z & 0x7FFFFFFFFFFFFFFFUL);
    }
}
