using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>
/// Counter-based random streams: the noise of step t of a run seeded with s comes from a generator seeded with a
/// hash of (s, t). A state therefore carries its whole random future in two integers, so in-place and copying
/// updates draw the same numbers, saved states resume bit-identically, and chains with different seeds never share
/// a stream.
/// </summary>
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
