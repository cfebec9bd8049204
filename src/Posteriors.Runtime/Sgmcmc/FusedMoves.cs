using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// The samplers' rules with noise (T &gt; 0) for one leaf on the CPU, fused into one pass over its storage: each chunk of
/// standard normals is drawn (<see cref="Philox"/>, the draws <see cref="Rng.NormalInto"/> would make) into a small
/// buffer that stays in cache and used at once, so θ, m and g are each read once and no noise tensor is ever written.
/// </summary>
/// <remarks>
/// Every expression is evaluated in the same order, with the same roundings, in the vector body and in the scalar tail,
/// so the result does not depend on where a chunk starts. The samplers keep TorchSharp's operations for T = 0 (no noise:
/// their trajectories are unchanged), for other devices, and for strided or half-precision leaves.
/// </remarks>
[SkipLocalsInit]
internal static class FusedMoves
{
    /// <summary>Normals per chunk: 4 KiB of float32, a multiple of both Philox group sizes.</summary>
    private const int Chunk = 1024;

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

    /// <summary>SGHMC (docs/ALGORITHMS.md §2.2): θ ← θ + drift·m; m ← decay·m + lr·g + noise·ξ (θ moves with the old m).</summary>
    public static void Sghmc(Tensor theta, Tensor m, Tensor g, double drift, double decay, double lr, double noise, ulong key, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Sghmc(Storage<double>(theta), Storage<double>(m), Storage<double>(g), drift, decay, lr, noise, key, step, offset);
        else Sghmc(Storage<float>(theta), Storage<float>(m), Storage<float>(g), (float)drift, (float)decay, (float)lr, (float)noise, key, step, offset);
    }

    /// <summary>SGLD (§2.1): θ ← θ + lr·g + noise·ξ.</summary>
    public static void Sgld(Tensor theta, Tensor g, double lr, double noise, ulong key, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Sgld(Storage<double>(theta), Storage<double>(g), lr, noise, key, step, offset);
        else Sgld(Storage<float>(theta), Storage<float>(g), (float)lr, (float)noise, key, step, offset);
    }

    /// <summary>BAOA (§2.4): m ← m + lr·g; θ ← θ + drift·m; m ← decay·m + noise·ξ; θ ← θ + drift·m.</summary>
    public static void Baoa(Tensor theta, Tensor m, Tensor g, double lr, double drift, double decay, double noise, ulong key, long step, long offset)
    {
        if (theta.dtype == ScalarType.Float64) Baoa(Storage<double>(theta), Storage<double>(m), Storage<double>(g), lr, drift, decay, noise, key, step, offset);
        else Baoa(Storage<float>(theta), Storage<float>(m), Storage<float>(g), (float)lr, (float)drift, (float)decay, (float)noise, key, step, offset);
    }

    private static void Sghmc<T>(Span<T> theta, Span<T> m, Span<T> g, T drift, T decay, T lr, T noise, ulong key, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> buffer = stackalloc T[Chunk];
        for (var start = 0; start < theta.Length; start += Chunk)
        {
            var n = Math.Min(Chunk, theta.Length - start);
            Span<T> xi = buffer[..n], t = theta.Slice(start, n), mm = m.Slice(start, n), gg = g.Slice(start, n);
            Philox.Normals(key, step, offset + start, xi);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var vm = Vector512.Create<T>(mm[i..]);
                (Vector512.Create<T>(t[i..]) + vm * drift).CopyTo(t[i..]);
                (vm * decay + Vector512.Create<T>(gg[i..]) * lr + Vector512.Create<T>(xi[i..]) * noise).CopyTo(mm[i..]);
            }
            for (; i < n; i++)
            {
                t[i] += mm[i] * drift;
                mm[i] = mm[i] * decay + gg[i] * lr + xi[i] * noise;
            }
        }
    }

    private static void Sgld<T>(Span<T> theta, Span<T> g, T lr, T noise, ulong key, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> buffer = stackalloc T[Chunk];
        for (var start = 0; start < theta.Length; start += Chunk)
        {
            var n = Math.Min(Chunk, theta.Length - start);
            Span<T> xi = buffer[..n], t = theta.Slice(start, n), gg = g.Slice(start, n);
            Philox.Normals(key, step, offset + start, xi);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
                (Vector512.Create<T>(t[i..]) + Vector512.Create<T>(gg[i..]) * lr + Vector512.Create<T>(xi[i..]) * noise).CopyTo(t[i..]);
            for (; i < n; i++) t[i] = t[i] + gg[i] * lr + xi[i] * noise;
        }
    }

    private static void Baoa<T>(Span<T> theta, Span<T> m, Span<T> g, T lr, T drift, T decay, T noise, ulong key, long step, long offset)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> buffer = stackalloc T[Chunk];
        for (var start = 0; start < theta.Length; start += Chunk)
        {
            var n = Math.Min(Chunk, theta.Length - start);
            Span<T> xi = buffer[..n], t = theta.Slice(start, n), mm = m.Slice(start, n), gg = g.Slice(start, n);
            Philox.Normals(key, step, offset + start, xi);
            var i = 0;
            for (; i <= n - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var kicked = Vector512.Create<T>(mm[i..]) + Vector512.Create<T>(gg[i..]) * lr;                  // B
                var half = Vector512.Create<T>(t[i..]) + kicked * drift;                                       // A
                var refreshed = kicked * decay + Vector512.Create<T>(xi[i..]) * noise;                         // O
                (half + refreshed * drift).CopyTo(t[i..]);                                                     // A
                refreshed.CopyTo(mm[i..]);
            }
            for (; i < n; i++)
            {
                var kicked = mm[i] + gg[i] * lr;
                var half = t[i] + kicked * drift;
                var refreshed = kicked * decay + xi[i] * noise;
                t[i] = half + refreshed * drift;
                mm[i] = refreshed;
            }
        }
    }

    private static Span<T> Storage<T>(Tensor t) where T : unmanaged => MemoryMarshal.Cast<byte, T>(t.bytes);
}
