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
[SkipLocalsInit]
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
    public static void Group(ulong key, long step, long group, Span<uint> words) => Groups(key, step, group, 1, words);

    /// <summary>Groups <paramref name="group"/> … <paramref name="group"/> + <paramref name="count"/> − 1 (at most four), 32 words each.</summary>
    /// <remarks>A Philox round is a chain of dependent multiplications; four groups side by side keep the vector units busy.</remarks>
    private static void Groups(ulong key, long step, long group, int count, Span<uint> words)
    {
        uint k0 = (uint)key, k1 = (uint)(key >> 32), s0 = (uint)(ulong)step, s1 = (uint)((ulong)step >> 32);
        if (!Vector512.IsHardwareAccelerated)
        {
            for (var l = 0; l < 8 * count; l++)
            {
                var block = (ulong)group * 8 + (ulong)l;
                var (x0, x1, x2, x3) = Block((uint)block, (uint)(block >> 32), s0, s1, k0, k1);
                var at = l / 8 * 32 + l % 8;
                (words[at], words[at + 8], words[at + 16], words[at + 24]) = (x0, x1, x2, x3);
            }
            return;
        }
        // Four groups at a time, in separate registers (a struct of vectors would be spilled to the stack).
        var low = Vector512.Create(0xFFFFFFFFUL);
        Vector512<ulong> m0 = Vector512.Create((ulong)M0), m1 = Vector512.Create((ulong)M1);
        Vector512<ulong> step0 = Vector512.Create((ulong)s0), step1 = Vector512.Create((ulong)s1);
        var blocks = Vector512.Create((ulong)group * 8) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        var eight = Vector512.Create(8UL);
        Vector512<ulong> a0 = blocks & low, a1 = blocks >>> 32, a2 = step0, a3 = step1;
        blocks += eight;
        Vector512<ulong> b0 = blocks & low, b1 = blocks >>> 32, b2 = step0, b3 = step1;
        blocks += eight;
        Vector512<ulong> c0 = blocks & low, c1 = blocks >>> 32, c2 = step0, c3 = step1;
        blocks += eight;
        Vector512<ulong> d0 = blocks & low, d1 = blocks >>> 32, d2 = step0, d3 = step1;
        for (var round = 0; round < Rounds; round++)
        {
            if (round > 0) { k0 += W0; k1 += W1; }
            Vector512<ulong> key0 = Vector512.Create((ulong)k0), key1 = Vector512.Create((ulong)k1);
            Vector512<ulong> pa0 = Multiply(m0, a0), pa1 = Multiply(m1, a2), pb0 = Multiply(m0, b0), pb1 = Multiply(m1, b2);
            Vector512<ulong> pc0 = Multiply(m0, c0), pc1 = Multiply(m1, c2), pd0 = Multiply(m0, d0), pd1 = Multiply(m1, d2);
            (a0, a1, a2, a3) = ((pa1 >>> 32) ^ a1 ^ key0, pa1 & low, (pa0 >>> 32) ^ a3 ^ key1, pa0 & low);
            (b0, b1, b2, b3) = ((pb1 >>> 32) ^ b1 ^ key0, pb1 & low, (pb0 >>> 32) ^ b3 ^ key1, pb0 & low);
            (c0, c1, c2, c3) = ((pc1 >>> 32) ^ c1 ^ key0, pc1 & low, (pc0 >>> 32) ^ c3 ^ key1, pc0 & low);
            (d0, d1, d2, d3) = ((pd1 >>> 32) ^ d1 ^ key0, pd1 & low, (pd0 >>> 32) ^ d3 ^ key1, pd0 & low);
        }
        // Every group is computed (the unused ones cost little); only the requested ones are stored.
        Vector512.Narrow(a0, a1).CopyTo(words);
        Vector512.Narrow(a2, a3).CopyTo(words[16..]);
        if (count < 2) return;
        Vector512.Narrow(b0, b1).CopyTo(words[32..]);
        Vector512.Narrow(b2, b3).CopyTo(words[48..]);
        if (count < 3) return;
        Vector512.Narrow(c0, c1).CopyTo(words[64..]);
        Vector512.Narrow(c2, c3).CopyTo(words[80..]);
        if (count < 4) return;
        Vector512.Narrow(d0, d1).CopyTo(words[96..]);
        Vector512.Narrow(d2, d3).CopyTo(words[112..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Multiply(Vector512<ulong> a, Vector512<ulong> b) =>
        Avx512F.IsSupported ? Avx512F.Multiply(a.AsUInt32(), b.AsUInt32()) : a * b;

    /// <summary>Standard normals number <paramref name="start"/>, <paramref name="start"/> + 1, … of (<paramref name="key"/>, <paramref name="step"/>) into <paramref name="destination"/>.</summary>
    public static void Normals(ulong key, long step, long start, Span<float> destination) => Normals<float>(key, step, start, destination);

    /// <inheritdoc cref="Normals(ulong, long, long, Span{float})"/>
    public static void Normals(ulong key, long step, long start, Span<double> destination) => Normals<double>(key, step, start, destination);

    /// <summary>The normals of <see cref="Normals(ulong, long, long, Span{float})"/> for T = float or double.</summary>
    internal static void Normals<T>(ulong key, long step, long start, Span<T> destination) where T : unmanaged
    {
        var size = typeof(T) == typeof(double) ? DoubleGroup : SingleGroup;
        Span<uint> words = stackalloc uint[128];
        Span<T> group = stackalloc T[SingleGroup];
        var done = 0;
        while (done < destination.Length)
        {
            var n = start + done;
            var (q, p) = (n / size, (int)(n % size));
            var count = (int)Math.Min(4, (p + destination.Length - done + size - 1) / size);
            Groups(key, step, q, count, words);
            for (var j = 0; j < count && done < destination.Length; j++, p = 0)
            {
                var take = Math.Min(size - p, destination.Length - done);
                if (take == size) BoxMuller(words.Slice(32 * j, 32), destination.Slice(done, size));
                else
                {
                    BoxMuller(words.Slice(32 * j, 32), group);
                    group.Slice(p, take).CopyTo(destination[done..]);
                }
                done += take;
            }
        }
    }

    private static void BoxMuller<T>(ReadOnlySpan<uint> words, Span<T> normals) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) BoxMuller(words, MemoryMarshal.Cast<T, double>(normals));
        else BoxMuller(words, MemoryMarshal.Cast<T, float>(normals));
    }

    private static void BoxMuller(ReadOnlySpan<uint> words, Span<float> normals)
    {
        // 24-bit uniforms. The radius' is offset by half a step, so it lies in (0, 1) and its log is finite. The angle's
        // top two bits pick the quadrant and the other 22 the angle within it, so no range reduction is needed.
        var u = (Vector512.ConvertToSingle((Load(words, 0) >>> 8).AsInt32()) + Vector512.Create(0.5f)) * Vector512.Create(1f / (1 << 24));
        var radius = Vector512.Sqrt(LogOfUnit(u) * -2f);
        var angle = Load(words, 16) >>> 8;
        var quadrant = angle >>> 22;
        // a − π/4 with a ∈ [0, π/2): sin a = (sin b + cos b)/√2, cos a = (cos b − sin b)/√2 with b ∈ [−π/4, π/4).
        var b = Vector512.ConvertToSingle((angle & Vector512.Create(0x3FFFFFu)).AsInt32()) * Vector512.Create(MathF.PI / 2 / (1 << 22)) - Vector512.Create(MathF.PI / 4);
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
        var u = (Vector512.ConvertToDouble(((uHigh << 21) | (uLow >>> 11)).AsInt64()) + Vector512.Create(0.5)) * scale;
        var v = Vector512.ConvertToDouble(((vHigh << 21) | (vLow >>> 11)).AsInt64()) * scale;
        var radius = Vector512.Sqrt(Vector512.Log(u) * -2.0);
        var (sin, cos) = Vector512.SinCos(v * (2 * Math.PI));
        (radius * cos).CopyTo(normals);
        (radius * sin).CopyTo(normals[8..]);
    }

    private static Vector512<uint> Load(ReadOnlySpan<uint> words, int at) =>
        Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(words), (nuint)at);
}
