using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Posteriors;

/// <summary>
/// Standard normal draws from the counter-based generator Philox-4×32-10 (Salmon et al., "Parallel random numbers: as
/// easy as 1, 2, 3", 2011), turned into normals by the Box–Muller transform. Draw n of (key, step) is a pure function of
/// those three numbers: nothing is carried from one draw to the next, so the draws of a tensor can be made in any order,
/// on any number of threads, into any part of a buffer, and always come out the same.
/// </summary>
/// <remarks>
/// The 128-bit counter is (block, step): its low 64 bits number the Philox block, its high 64 bits are the step. Eight
/// consecutive blocks form a group whose 32 words are laid out word-major (word r of block l at 8r + l), which is how
/// eight blocks come out of one pass over 512-bit vectors. A float32 group gives 32 normals: words 0–15 are the radii'
/// uniforms, words 16–31 the angles', and pair i gives normal i (cosine) and normal 16 + i (sine). A float64 group gives
/// 16 normals from 53-bit uniforms (words 0–7 high and 8–15 low for the radii, 16–23 and 24–31 for the angles). The
/// arithmetic is the same at every vector width, so the draws do not depend on the machine's SIMD width either.
/// </remarks>
internal static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    private const int Rounds = 10;

    /// <summary>Normals per group of eight blocks, float32.</summary>
    public const int SingleGroup = 32;

    /// <summary>Normals per group of eight blocks, float64.</summary>
    public const int DoubleGroup = 16;

    /// <summary>One Philox-4×32-10 block: the four words of counter (c0, c1, c2, c3) under key (k0, k1).</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (var round = 0; round < Rounds; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            var p0 = (ulong)M0 * c0;
            var p1 = (ulong)M1 * c2;
            (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>The 32 words of group <paramref name="group"/> (blocks 8·group … 8·group + 7) at <paramref name="step"/>, word-major.</summary>
    public static void Group(ulong key, long step, long group, Span<uint> words)
    {
        uint k0 = (uint)key, k1 = (uint)(key >> 32), s0 = (uint)(ulong)step, s1 = (uint)((ulong)step >> 32);
        var first = (ulong)group * 8;
        if (Vector512.IsHardwareAccelerated)
        {
            var mask = Vector512.Create(0xFFFFFFFFUL);
            var blocks = Vector512.Create(first) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            Vector512<ulong> c0 = blocks & mask, c1 = blocks >>> 32, c2 = Vector512.Create((ulong)s0), c3 = Vector512.Create((ulong)s1);
            Vector512<ulong> m0 = Vector512.Create((ulong)M0), m1 = Vector512.Create((ulong)M1);
            for (var round = 0; round < Rounds; round++)
            {
                if (round > 0) { k0 += W0; k1 += W1; }
                var p0 = Multiply(m0, c0);
                var p1 = Multiply(m1, c2);
                var n0 = (p1 >>> 32) ^ c1 ^ Vector512.Create((ulong)k0);
                var n2 = (p0 >>> 32) ^ c3 ^ Vector512.Create((ulong)k1);
                (c0, c1, c2, c3) = (n0, p1 & mask, n2, p0 & mask);
            }
            Vector512.Narrow(c0, c1).CopyTo(words);
            Vector512.Narrow(c2, c3).CopyTo(words[16..]);
            return;
        }
        for (var l = 0; l < 8; l++)
        {
            var block = first + (ulong)l;
            var (x0, x1, x2, x3) = Block((uint)block, (uint)(block >> 32), s0, s1, k0, k1);
            (words[l], words[8 + l], words[16 + l], words[24 + l]) = (x0, x1, x2, x3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Multiply(Vector512<ulong> a, Vector512<ulong> b) =>
        Avx512F.IsSupported ? Avx512F.Multiply(a.AsUInt32(), b.AsUInt32()) : a * b;

    /// <summary>Standard normals number <paramref name="start"/>, <paramref name="start"/> + 1, … of (<paramref name="key"/>, <paramref name="step"/>) into <paramref name="destination"/>.</summary>
    public static void Normals(ulong key, long step, long start, Span<float> destination)
    {
        Span<uint> words = stackalloc uint[32];
        Span<float> group = stackalloc float[SingleGroup];
        var done = 0;
        while (done < destination.Length)
        {
            var n = start + done;
            var (q, p) = (n / SingleGroup, (int)(n % SingleGroup));
            Group(key, step, q, words);
            var take = Math.Min(SingleGroup - p, destination.Length - done);
            if (take == SingleGroup) BoxMuller(words, destination.Slice(done, SingleGroup));
            else
            {
                BoxMuller(words, group);
                group.Slice(p, take).CopyTo(destination[done..]);
            }
            done += take;
        }
    }

    /// <inheritdoc cref="Normals(ulong, long, long, Span{float})"/>
    public static void Normals(ulong key, long step, long start, Span<double> destination)
    {
        Span<uint> words = stackalloc uint[32];
        Span<double> group = stackalloc double[DoubleGroup];
        var done = 0;
        while (done < destination.Length)
        {
            var n = start + done;
            var (q, p) = (n / DoubleGroup, (int)(n % DoubleGroup));
            Group(key, step, q, words);
            var take = Math.Min(DoubleGroup - p, destination.Length - done);
            if (take == DoubleGroup) BoxMuller(words, destination.Slice(done, DoubleGroup));
            else
            {
                BoxMuller(words, group);
                group.Slice(p, take).CopyTo(destination[done..]);
            }
            done += take;
        }
    }

    private static void BoxMuller(ReadOnlySpan<uint> words, Span<float> normals)
    {
        // 24-bit uniforms. The radius' is offset by half a step, so it lies in (0, 1) and its log is finite. The angle's
        // top two bits pick the quadrant and the other 22 the angle within it, so no range reduction is needed.
        var u = (Vector512.ConvertToSingle(Load(words, 0) >>> 8) + Vector512.Create(0.5f)) * Vector512.Create(1f / (1 << 24));
        var radius = Vector512.Sqrt(LogOfUnit(u) * -2f);
        var angle = Load(words, 16) >>> 8;
        var quadrant = angle >>> 22;
        // a − π/4 with a ∈ [0, π/2): sin a = (sin b + cos b)/√2, cos a = (cos b − sin b)/√2 with b ∈ [−π/4, π/4).
        var b = Vector512.ConvertToSingle(angle & Vector512.Create(0x3FFFFFu)) * Vector512.Create(MathF.PI / 2 / (1 << 22)) - Vector512.Create(MathF.PI / 4);
        var z = b * b;
        var sinB = ((Vector512.Create(-1.9515295891E-4f) * z + Vector512.Create(8.3321608736E-3f)) * z - Vector512.Create(1.6666654611E-1f)) * z * b + b;
        var cosB = ((Vector512.Create(2.443315711809948E-5f) * z - Vector512.Create(1.388731625493765E-3f)) * z + Vector512.Create(4.166664568298827E-2f)) * z * z
            - z * 0.5f + Vector512<float>.One;
        var sinA = (sinB + cosB) * (1 / MathF.Sqrt(2));
        var cosA = (cosB - sinB) * (1 / MathF.Sqrt(2));
        // Rotate by quadrant·π/2: odd quadrants swap sine and cosine; the sine is negative in quadrants 2–3, the cosine in 1–2.
        var swap = Vector512.Equals(quadrant & Vector512<uint>.One, Vector512<uint>.One).AsSingle();
        var sin = Vector512.ConditionalSelect(swap, cosA, sinA).AsUInt32() ^ ((quadrant & Vector512.Create(2u)) << 30);
        var cos = Vector512.ConditionalSelect(swap, sinA, cosA).AsUInt32() ^ (((quadrant ^ (quadrant >>> 1)) & Vector512<uint>.One) << 31);
        (radius * cos.AsSingle()).CopyTo(normals);
        (radius * sin.AsSingle()).CopyTo(normals[16..]);
    }

    /// <summary>ln u for u in (0, 1], to about one unit in the last place (Cephes' logf polynomial).</summary>
    private static Vector512<float> LogOfUnit(Vector512<float> u)
    {
        var bits = u.AsInt32();
        var exponent = (bits >> 23) - Vector512.Create(127);
        var mantissa = ((bits & Vector512.Create(0x7FFFFF)) | Vector512.Create(0x3F800000)).AsSingle();   // [1, 2)
        // Centre the mantissa on 1: [√½, √2).
        var large = Vector512.GreaterThan(mantissa, Vector512.Create(MathF.Sqrt(2)));
        mantissa = Vector512.ConditionalSelect(large, mantissa * 0.5f, mantissa);
        var e = Vector512.ConvertToSingle(exponent - large.AsInt32());
        var x = mantissa - Vector512<float>.One;
        var z = x * x;
        var p = Vector512.Create(7.0376836292E-2f);
        p = p * x + Vector512.Create(-1.1514610310E-1f);
        p = p * x + Vector512.Create(1.1676998740E-1f);
        p = p * x + Vector512.Create(-1.2420140846E-1f);
        p = p * x + Vector512.Create(1.4249322787E-1f);
        p = p * x + Vector512.Create(-1.6668057665E-1f);
        p = p * x + Vector512.Create(2.0000714765E-1f);
        p = p * x + Vector512.Create(-2.4999993993E-1f);
        p = p * x + Vector512.Create(3.3333331174E-1f);
        var y = x * z * p + e * -2.12194440e-4f - z * 0.5f;
        return x + y + e * 0.693359375f;
    }

    private static void BoxMuller(ReadOnlySpan<uint> words, Span<double> normals)
    {
        // 53-bit uniforms from two words each: 32 high bits and 21 low bits.
        var scale = Vector512.Create(1.0 / (1UL << 53));
        var (uHigh, uLow) = Vector512.Widen(Load(words, 0));
        var (vHigh, vLow) = Vector512.Widen(Load(words, 16));
        var u = (Vector512.ConvertToDouble((uHigh << 21) | (uLow >>> 11)) + Vector512.Create(0.5)) * scale;
        var v = Vector512.ConvertToDouble((vHigh << 21) | (vLow >>> 11)) * scale;
        var radius = Vector512.Sqrt(Vector512.Log(u) * -2.0);
        var (sin, cos) = Vector512.SinCos(v * (2 * Math.PI));
        (radius * cos).CopyTo(normals);
        (radius * sin).CopyTo(normals[8..]);
    }

    private static Vector512<uint> Load(ReadOnlySpan<uint> words, int at) =>
        Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(words), (nuint)at);
}
