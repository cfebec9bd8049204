using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Posteriors;

/// <summary>
/// Standard normal draws from the counter-based generator Philox-4×32-10 (Salmon et al., "Parallel random numbers: as
/// easy as 1, 2, 3", 2011), turned into normals by the Box–Muller transform: <see cref="NoiseStream.PhiloxBoxMuller"/>,
/// the samplers' first step noise (its words also seed <see cref="PhiloxXoshiro"/>). Draw n of (key, step) is a pure function of
/// those three numbers: nothing is carried from one draw to the next, so the draws of a tensor can be made in any order,
/// on any number of threads, into any part of a buffer, and always come out the same.
/// </summary>
/// <remarks>
/// The 128-bit counter is (block, step): its low 64 bits number the Philox block, its high 64 bits are the step. Eight
/// consecutive blocks form a group whose 32 words are laid out word-major (word r of block l at 8r + l), which is how
/// eight blocks come out of one pass over 512-bit vectors. A float32 group gives 32 normals: words 0–15 are the radii'
/// uniforms, words 16–31 the angles', and pair i gives normal i (cosine) and normal 16 + i (sine). A float64 group gives
/// 16 normals from 53-bit uniforms (words 0–7 high and 8–15 low for the radii, 16–23 and 24–31 for the angles).
/// Machines with AVX-512 take 512-bit vectors, machines with AVX2 256-bit ones, others one lane at a time; the words are
/// integers and the float32 transform performs the same IEEE operations in the same order at every width (no fused
/// multiply–adds), so float32 draws do not depend on the machine's SIMD width. float64 draws use .NET's vector Log and
/// SinCos, whose last bits can differ between a 512-bit and a 256-bit machine.
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
    internal static void Groups(ulong key, long step, long group, int count, Span<uint> words)
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) Groups512(key, step, group, count, words);
        else if (Vector256.IsHardwareAccelerated && Avx2.IsSupported)
            for (var j = 0; j < count; j++) Group256(key, step, group + j, words.Slice(32 * j, 32));
        else
        {
            uint k0 = (uint)key, k1 = (uint)(key >> 32), s0 = (uint)(ulong)step, s1 = (uint)((ulong)step >> 32);
            for (var l = 0; l < 8 * count; l++)
            {
                var block = (ulong)group * 8 + (ulong)l;
                var (x0, x1, x2, x3) = Block((uint)block, (uint)(block >> 32), s0, s1, k0, k1);
                var at = l / 8 * 32 + l % 8;
                (words[at], words[at + 8], words[at + 16], words[at + 24]) = (x0, x1, x2, x3);
            }
        }
    }

    /// <summary>Four groups side by side, one block per 64-bit lane.</summary>
    /// <remarks>
    /// A Philox round is a chain of dependent multiplications; four independent chains keep the vector units busy. The
    /// chains are separate locals: a struct of vectors would be spilled to the stack.
    /// </remarks>
    private static void Groups512(ulong key, long step, long group, int count, Span<uint> words)
    {
        Vector512<ulong> step0 = Vector512.Create((ulong)(uint)step), step1 = Vector512.Create((ulong)step >> 32);
        var blocks = Vector512.Create((ulong)group * 8) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        var eight = Vector512.Create(8UL);
        Vector512<ulong> a0 = blocks, a1 = blocks >>> 32, a2 = step0, a3 = step1;
        blocks += eight;
        Vector512<ulong> b0 = blocks, b1 = blocks >>> 32, b2 = step0, b3 = step1;
        blocks += eight;
        Vector512<ulong> c0 = blocks, c1 = blocks >>> 32, c2 = step0, c3 = step1;
        blocks += eight;
        Vector512<ulong> d0 = blocks, d1 = blocks >>> 32, d2 = step0, d3 = step1;
        // Unrolled: in a loop every word would have to return to its register at the back edge, a move per word per round.
        Round(key, 0, ref a0, ref a1, ref a2, ref a3); Round(key, 0, ref b0, ref b1, ref b2, ref b3); Round(key, 0, ref c0, ref c1, ref c2, ref c3); Round(key, 0, ref d0, ref d1, ref d2, ref d3);
        Round(key, 1, ref a0, ref a1, ref a2, ref a3); Round(key, 1, ref b0, ref b1, ref b2, ref b3); Round(key, 1, ref c0, ref c1, ref c2, ref c3); Round(key, 1, ref d0, ref d1, ref d2, ref d3);
        Round(key, 2, ref a0, ref a1, ref a2, ref a3); Round(key, 2, ref b0, ref b1, ref b2, ref b3); Round(key, 2, ref c0, ref c1, ref c2, ref c3); Round(key, 2, ref d0, ref d1, ref d2, ref d3);
        Round(key, 3, ref a0, ref a1, ref a2, ref a3); Round(key, 3, ref b0, ref b1, ref b2, ref b3); Round(key, 3, ref c0, ref c1, ref c2, ref c3); Round(key, 3, ref d0, ref d1, ref d2, ref d3);
        Round(key, 4, ref a0, ref a1, ref a2, ref a3); Round(key, 4, ref b0, ref b1, ref b2, ref b3); Round(key, 4, ref c0, ref c1, ref c2, ref c3); Round(key, 4, ref d0, ref d1, ref d2, ref d3);
        Round(key, 5, ref a0, ref a1, ref a2, ref a3); Round(key, 5, ref b0, ref b1, ref b2, ref b3); Round(key, 5, ref c0, ref c1, ref c2, ref c3); Round(key, 5, ref d0, ref d1, ref d2, ref d3);
        Round(key, 6, ref a0, ref a1, ref a2, ref a3); Round(key, 6, ref b0, ref b1, ref b2, ref b3); Round(key, 6, ref c0, ref c1, ref c2, ref c3); Round(key, 6, ref d0, ref d1, ref d2, ref d3);
        Round(key, 7, ref a0, ref a1, ref a2, ref a3); Round(key, 7, ref b0, ref b1, ref b2, ref b3); Round(key, 7, ref c0, ref c1, ref c2, ref c3); Round(key, 7, ref d0, ref d1, ref d2, ref d3);
        Round(key, 8, ref a0, ref a1, ref a2, ref a3); Round(key, 8, ref b0, ref b1, ref b2, ref b3); Round(key, 8, ref c0, ref c1, ref c2, ref c3); Round(key, 8, ref d0, ref d1, ref d2, ref d3);
        Round(key, 9, ref a0, ref a1, ref a2, ref a3); Round(key, 9, ref b0, ref b1, ref b2, ref b3); Round(key, 9, ref c0, ref c1, ref c2, ref c3); Round(key, 9, ref d0, ref d1, ref d2, ref d3);
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

    /// <summary>One group as two chains of four blocks (AVX2 has half the lanes and, without AVX-512, half the registers).</summary>
    internal static void Group256(ulong key, long step, long group, Span<uint> words)
    {
        Vector256<ulong> step0 = Vector256.Create((ulong)(uint)step), step1 = Vector256.Create((ulong)step >> 32);
        var blocks = Vector256.Create((ulong)group * 8) + Vector256.Create(0UL, 1, 2, 3);
        Vector256<ulong> a0 = blocks, a1 = blocks >>> 32, a2 = step0, a3 = step1;
        blocks += Vector256.Create(4UL);
        Vector256<ulong> b0 = blocks, b1 = blocks >>> 32, b2 = step0, b3 = step1;
        for (var round = 0; round < Rounds; round++)
        {
            Round(key, round, ref a0, ref a1, ref a2, ref a3);
            Round(key, round, ref b0, ref b1, ref b2, ref b3);
        }
        Vector256.Narrow(a0, b0).CopyTo(words);
        Vector256.Narrow(a1, b1).CopyTo(words[8..]);
        Vector256.Narrow(a2, b2).CopyTo(words[16..]);
        Vector256.Narrow(a3, b3).CopyTo(words[24..]);
    }

    /// <summary>
    /// Round <paramref name="round"/> on a vector of blocks, each word in the low half of a 64-bit lane. Only low halves are
    /// ever read — by the 32×32→64 multiplication and, at the end, by narrowing — so whatever the products and exclusive-ors
    /// leave in the high halves needs no masking.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(ulong key, int round, ref Vector512<ulong> x0, ref Vector512<ulong> x1, ref Vector512<ulong> x2, ref Vector512<ulong> x3)
    {
        var p0 = Avx512F.Multiply(x0.AsUInt32(), Vector512.Create((ulong)M0).AsUInt32());
        var p1 = Avx512F.Multiply(x2.AsUInt32(), Vector512.Create((ulong)M1).AsUInt32());
        x0 = (p1 >>> 32) ^ x1 ^ Vector512.Create((ulong)((uint)key + (uint)round * W0));
        x1 = p1;
        x2 = (p0 >>> 32) ^ x3 ^ Vector512.Create((ulong)((uint)(key >> 32) + (uint)round * W1));
        x3 = p0;
    }

    /// <inheritdoc cref="Round(ulong, int, ref Vector512{ulong}, ref Vector512{ulong}, ref Vector512{ulong}, ref Vector512{ulong})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round(ulong key, int round, ref Vector256<ulong> x0, ref Vector256<ulong> x1, ref Vector256<ulong> x2, ref Vector256<ulong> x3)
    {
        var p0 = Avx2.Multiply(x0.AsUInt32(), Vector256.Create((ulong)M0).AsUInt32());
        var p1 = Avx2.Multiply(x2.AsUInt32(), Vector256.Create((ulong)M1).AsUInt32());
        x0 = (p1 >>> 32) ^ x1 ^ Vector256.Create((ulong)((uint)key + (uint)round * W0));
        x1 = p1;
        x2 = (p0 >>> 32) ^ x3 ^ Vector256.Create((ulong)((uint)(key >> 32) + (uint)round * W1));
        x3 = p0;
    }

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
        else if (Vector512.IsHardwareAccelerated) BoxMuller<Single512, Words512>(words, MemoryMarshal.Cast<T, float>(normals));
        else if (Vector256.IsHardwareAccelerated) BoxMuller<Single256, Words256>(words, MemoryMarshal.Cast<T, float>(normals));
        else BoxMuller<Single1, Words1>(words, MemoryMarshal.Cast<T, float>(normals));
    }

    /// <summary>
    /// The float32 Box–Muller transform of a group, <typeparamref name="TSingle"/>'s width at a time. Every width performs
    /// the same IEEE operations in the same order (no fused multiply–adds), so the normals are bit-identical whether a
    /// machine takes the 512-bit, the 256-bit or the scalar path.
    /// </summary>
    internal static void BoxMuller<TSingle, TWords>(ReadOnlySpan<uint> words, Span<float> normals)
        where TSingle : ISingleLanes<TSingle, TWords>
        where TWords : IWordLanes<TWords>
    {
        for (var i = 0; i < 16; i += TSingle.Count)
        {
            // 24-bit uniforms. The radius' is offset by half a step, (2k + 1)/2²⁵, so it lies in (0, 1) and its log is
            // finite. The angle's top two bits pick the quadrant and the next 22 the angle within it, so no range
            // reduction is needed.
            var u = TSingle.Convert((TWords.Load(words, i) >>> 7) | TWords.Word(1)) * TSingle.Float(1f / (1 << 25));
            var radius = TSingle.Sqrt(LogOfUnit<TSingle, TWords>(u) * TSingle.Float(-2f));
            var angle = TWords.Load(words, 16 + i);
            var quadrant = angle >>> 30;
            // a − π/4 with a ∈ [0, π/2): sin a = (sin b + cos b)/√2, cos a = (cos b − sin b)/√2 with b ∈ [−π/4, π/4).
            var b = TSingle.Convert((angle >>> 8) & TWords.Word(0x3FFFFF)) * TSingle.Float(MathF.PI / 2 / (1 << 22)) - TSingle.Float(MathF.PI / 4);
            var z = b * b;
            var sinB = ((TSingle.Float(-1.9515295891E-4f) * z + TSingle.Float(8.3321608736E-3f)) * z - TSingle.Float(1.6666654611E-1f)) * z * b + b;
            var cosB = ((TSingle.Float(2.443315711809948E-5f) * z - TSingle.Float(1.388731625493765E-3f)) * z + TSingle.Float(4.166664568298827E-2f)) * z * z
                - z * TSingle.Float(0.5f) + TSingle.Float(1f);
            var sinA = (sinB + cosB) * TSingle.Float(1 / MathF.Sqrt(2));
            var cosA = (cosB - sinB) * TSingle.Float(1 / MathF.Sqrt(2));
            // Rotate by quadrant·π/2: odd quadrants swap sine and cosine; the sine is negative in quadrants 2–3, the
            // cosine in 1–2 (where bit 1 of quadrant + 1 is set).
            var swap = TWords.Equal(quadrant & TWords.Word(1), TWords.Word(1));
            var sin = TSingle.Select(swap, cosA, sinA) ^ ((quadrant << 30) & TWords.Word(0x80000000));
            var cos = TSingle.Select(swap, sinA, cosA) ^ (((quadrant + TWords.Word(1)) << 30) & TWords.Word(0x80000000));
            TSingle.Store(radius * TSingle.FromBits(cos), normals, i);
            TSingle.Store(radius * TSingle.FromBits(sin), normals, 16 + i);
        }
    }

    /// <summary>ln u for u in (0, 1], to about one unit in the last place (Cephes' logf polynomial).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TSingle LogOfUnit<TSingle, TWords>(TSingle u)
        where TSingle : ISingleLanes<TSingle, TWords>
        where TWords : IWordLanes<TWords>
    {
        // u = m·2^e with the mantissa m centred on 1, in [√½, √2): adding 2²³ − 0x3504F4 to the bits carries into the
        // exponent exactly when the mantissa field exceeds √2's (0x3504F3), and adding 0x3F3504F4 back to the field
        // gives m, or m/2 after a carry.
        var bits = TSingle.Bits(u) + TWords.Word(0x800000 - 0x3504F4);
        var e = TSingle.Convert(bits >>> 23) - TSingle.Float(127);
        var x = TSingle.FromBits((bits & TWords.Word(0x7FFFFF)) + TWords.Word(0x3F3504F4)) - TSingle.Float(1);
        var z = x * x;
        var p = TSingle.Float(7.0376836292E-2f);
        p = p * x + TSingle.Float(-1.1514610310E-1f);
        p = p * x + TSingle.Float(1.1676998740E-1f);
        p = p * x + TSingle.Float(-1.2420140846E-1f);
        p = p * x + TSingle.Float(1.4249322787E-1f);
        p = p * x + TSingle.Float(-1.6668057665E-1f);
        p = p * x + TSingle.Float(2.0000714765E-1f);
        p = p * x + TSingle.Float(-2.4999993993E-1f);
        p = p * x + TSingle.Float(3.3333331174E-1f);
        var y = x * z * p + e * TSingle.Float(-2.12194440e-4f) - z * TSingle.Float(0.5f);
        return x + y + e * TSingle.Float(0.693359375f);
    }

    internal static void BoxMuller(ReadOnlySpan<uint> words, Span<double> normals)
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
