using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// The samplers' rules with noise (T &gt; 0) for one leaf on the CPU, fused into one pass over its storage: each chunk of
/// standard normals is drawn (the draws <see cref="Rng.NormalInto"/> would make) into a small buffer that stays in cache
/// and used at once, so θ, m and g are each read once and no noise tensor is ever written.
/// </summary>
/// <remarks>
/// Every expression is evaluated in the same order, with the same roundings, in the vector body and in the scalar tail,
/// so the result does not depend on where a chunk starts. The samplers keep TorchSharp's operations for T = 0 (no noise:
/// their trajectories are unchanged), for other devices, and for strided or half-precision leaves.
/// </remarks>
[SkipLocalsInit]
internal static class FusedMoves
{
    /// <summary>
    /// Normals per chunk: one <see cref="PhiloxXoshiro"/> block (16 KiB of float32, 32 KiB of float64). Chunks end at
    /// block boundaries of the flattened tree, so no block is generated twice.
    /// </summary>
    private const int Chunk = PhiloxXoshiro.Block;

    /// <summary>Whether the leaves can be moved by a fused kernel: contiguous CPU float32 or float64 of one dtype, under 2 GiB each.</summary>
    public static bool Fits(params ReadOnlySpan<Tensor> leaves)
    {
        var dtype = leaves[0].dtype;
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64)) return false;
        foreach (var t in leaves)
            if (t.dtype != dtype || t.device_type != DeviceType.CPU || !t.is_contiguous() || t.numel() * t.element_size() > int.MaxValue)
                return false;
        return true;
    }

    /// <summary>SGHMC (docs/ALGORITHMS.md §2.2): θ ← θ + drift·m; m ← decay·m + lr·g + scale·ξ (θ moves with the old m).</summary>
    public static void Sghmc(Tensor theta, Tensor m, Tensor g, double drift, double decay, double lr, double scale, StepNoise noise, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Sghmc(Storage<double>(theta), Storage<double>(m), Storage<double>(g), drift, decay, lr, scale, noise, step, offset);
        else Sghmc(Storage<float>(theta), Storage<float>(m), Storage<float>(g), (float)drift, (float)decay, (float)lr, (float)scale, noise, step, offset);
    }

    /// <summary>SGLD (§2.1): θ ← θ + lr·g + scale·ξ.</summary>
    public static void Sgld(Tensor theta, Tensor g, double lr, double scale, StepNoise noise, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Sgld(Storage<double>(theta), Storage<double>(g), lr, scale, noise, step, offset);
        else Sgld(Storage<float>(theta), Storage<float>(g), (float)lr, (float)scale, noise, step, offset);
    }

    /// <summary>BAOA (§2.4): m ← m + lr·g; θ ← θ + drift·m; m ← decay·m + scale·ξ; θ ← θ + drift·m.</summary>
    public static void Baoa(Tensor theta, Tensor m, Tensor g, double lr, double drift, double decay, double scale, StepNoise noise, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Baoa(Storage<double>(theta), Storage<double>(m), Storage<double>(g), lr, drift, decay, scale, noise, step, offset);
        else Baoa(Storage<float>(theta), Storage<float>(m), Storage<float>(g), (float)lr, (float)drift, (float)decay, (float)scale, noise, step, offset);
    }

    /// <summary>Applies <paramref name="rule"/> to a leaf of <paramref name="length"/> elements at <paramref name="offset"/>, a chunk of noise at a time.</summary>
    private static void Apply<T, TRule>(TRule rule, int length, StepNoise noise, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TRule : IRule<T>, allows ref struct
    {
        Span<T> buffer = stackalloc T[Chunk];
        for (var start = 0; start < length;)
        {
            var n = (int)Math.Min(Chunk - (offset + start) % Chunk, length - start);
            var xi = buffer[..n];
            noise.Normals(step, offset + start, xi);
            rule.Move(start, xi);
            start += n;
        }
    }

    /// <summary>A sampler's rule on elements start … start + ξ.Length − 1 of a leaf, given their noise ξ.</summary>
    private interface IRule<T> where T : unmanaged
    {
        void Move(int start, scoped ReadOnlySpan<T> xi);
    }

    private static void Sghmc<T>(Span<T> theta, Span<T> m, Span<T> g, T drift, T decay, T lr, T scale, StepNoise noise, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Apply<T, SghmcRule<T>>(new(theta, m, g, drift, decay, lr, scale), theta.Length, noise, step, offset);

    private static void Sgld<T>(Span<T> theta, Span<T> g, T lr, T scale, StepNoise noise, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Apply<T, SgldRule<T>>(new(theta, g, lr, scale), theta.Length, noise, step, offset);

    private static void Baoa<T>(Span<T> theta, Span<T> m, Span<T> g, T lr, T drift, T decay, T scale, StepNoise noise, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Apply<T, BaoaRule<T>>(new(theta, m, g, lr, drift, decay, scale), theta.Length, noise, step, offset);

    private readonly ref struct SghmcRule<T>(Span<T> theta, Span<T> m, Span<T> g, T drift, T decay, T lr, T scale) : IRule<T>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Span<T> _theta = theta, _m = m, _g = g;

        public void Move(int start, scoped ReadOnlySpan<T> xi)
        {
            var n = xi.Length;
            Span<T> t = _theta.Slice(start, n), mm = _m.Slice(start, n), gg = _g.Slice(start, n);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var vm = Vector512.Create<T>(mm[i..]);
                (Vector512.Create<T>(t[i..]) + vm * drift).CopyTo(t[i..]);
                (vm * decay + Vector512.Create<T>(gg[i..]) * lr + Vector512.Create<T>(xi[i..]) * scale).CopyTo(mm[i..]);
            }
            for (; i < n; i++)
            {
                t[i] += mm[i] * drift;
                mm[i] = mm[i] * decay + gg[i] * lr + xi[i] * scale;
            }
        }
    }

    private readonly ref struct SgldRule<T>(Span<T> theta, Span<T> g, T lr, T scale) : IRule<T>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Span<T> _theta = theta, _g = g;

        public void Move(int start, scoped ReadOnlySpan<T> xi)
        {
            var n = xi.Length;
            Span<T> t = _theta.Slice(start, n), gg = _g.Slice(start, n);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                (Vector512.Create<T>(t[i..]) + Vector512.Create<T>(gg[i..]) * lr + Vector512.Create<T>(xi[i..]) * scale).CopyTo(t[i..]);
            for (; i < n; i++) t[i] = t[i] + gg[i] * lr + xi[i] * scale;
        }
    }

    private readonly ref struct BaoaRule<T>(Span<T> theta, Span<T> m, Span<T> g, T lr, T drift, T decay, T scale) : IRule<T>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly Span<T> _theta = theta, _m = m, _g = g;

        public void Move(int start, scoped ReadOnlySpan<T> xi)
        {
            var n = xi.Length;
            Span<T> t = _theta.Slice(start, n), mm = _m.Slice(start, n), gg = _g.Slice(start, n);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var kicked = Vector512.Create<T>(mm[i..]) + Vector512.Create<T>(gg[i..]) * lr;                  // B
                var half = Vector512.Create<T>(t[i..]) + kicked * drift;                                       // A
                var refreshed = kicked * decay + Vector512.Create<T>(xi[i..]) * scale;                         // O
                (half + refreshed * drift).CopyTo(t[i..]);                                                     // A
                refreshed.CopyTo(mm[i..]);
            }
            for (; i < n; i++)
            {
                var kicked = mm[i] + gg[i] * lr;
                var half = t[i] + kicked * drift;
                var refreshed = kicked * decay + xi[i] * scale;
                t[i] = half + refreshed * drift;
                mm[i] = refreshed;
            }
        }
    }

    private static Span<T> Storage<T>(Tensor t) where T : unmanaged => MemoryMarshal.Cast<byte, T>(t.bytes);
}
