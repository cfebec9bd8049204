using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Posteriors;

/// <summary>
/// The samplers' step noise of <see cref="NoiseStream.PhiloxXoshiro"/>: Philox-4×32-10 (<see cref="Philox"/>) keys one
/// block of 4,096 positions at a time, 32 xoshiro128++ generators (Blackman &amp; Vigna, "Scrambled linear pseudorandom
/// number generators", ACM TOMS 2021) side by side fill that block, and a Box–Muller transform with fused multiply–adds
/// turns their words into normals. As with <see cref="Philox"/>, normal n of (key, step) is a pure function of those three
/// numbers: a buffer starting inside a block regenerates the block from its start (at most one block's words per leaf).
/// </summary>
/// <remarks>
/// <para>
/// Block b of (key, step) is seeded with the 128 words of Philox groups 4b … 4b + 3 of (key ⊕ <see cref="Domain"/>, step)
/// — no Philox block is shared with <see cref="NoiseStream.PhiloxBoxMuller"/>'s words — as the 128-bit states of 32
/// xoshiro128++ generators in two sets A and B of 16 lanes (words 0–63 are A's s0…s3 for lanes 0–15, words 64–127 B's).
/// Step k of the block advances every generator once: A's 16 outputs give the radii and B's the angles of float32 normals
/// 4096b + 32k + i (cosine side, i &lt; 16) and 4096b + 32k + 16 + i (sine side), or the 53-bit uniforms of float64 normals
/// 4096b + 16k + i, laid out like a <see cref="Philox"/> double group (A = words 0–15, B = words 16–31).
/// </para>
/// <para>
/// Each generator is used for at most 256 outputs from a state that Philox-4×32-10, a Crush-resistant counter-based
/// generator, makes indistinguishable from uniform, so the lanes' sequences are independent draws of a generator that
/// passes BigCrush and PractRand; its weakest bits (the lowest of the ++ output) only move the radius' uniform below
/// 2⁻²⁴ relative.
/// </para>
/// <para>
/// The float32 transform: the radius from u = k/2³¹, k = (word ≫ 1) | 1 rounded to float32 (so u ∈ [2⁻³¹, 1] and the
/// largest radius is √(62 ln 2) ≈ 6.56), r² = −2 ln u with a degree-6 polynomial for ln on [√½, √2) (about 4·10⁻⁷ of r²);
/// the angle as b ∈ [0, π/4) from the low 29 bits and a random symmetry of the square from the top three (bit 29 swaps
/// cosine and sine, bits 31 and 30 flip their signs), which leaves the angle uniform on the circle; sin b and cos b by
/// polynomials (about 2·10⁻⁷). Every width does the same IEEE operations in the same order, fused multiply–adds
/// included (correctly rounded in hardware or software), so float32 normals do not depend on the machine's SIMD width.
/// float64 normals use the <see cref="Philox"/> double transform (.NET's vector Log and SinCos).
/// </para>
/// </remarks>
[SkipLocalsInit]
internal static class PhiloxXoshiro
{
    /// <summary>Positions per block: one Philox key-up per 4,096 normals.</summary>
    public const int Block = 4096;

    /// <summary>Exclusive-ored into the key so the seeds come from other Philox blocks than <see cref="Philox"/>'s words.</summary>
    public const ulong Domain = 0x5851F42D4C957F2DUL;

    /// <summary>Words of generator state per block.</summary>
    public const int StateWords = 128;

    /// <summary>Standard normals number <paramref name="start"/>, <paramref name="start"/> + 1, … of (<paramref name="key"/>, <paramref name="step"/>) into <paramref name="destination"/>.</summary>
    public static void Normals(ulong key, long step, long start, Span<float> destination) => Normals<float>(key, step, start, destination);

    /// <inheritdoc cref="Normals(ulong, long, long, Span{float})"/>
    public static void Normals(ulong key, long step, long start, Span<double> destination) => Normals<double>(key, step, start, destination);

    private static void Normals<T>(ulong key, long step, long start, Span<T> destination) where T : unmanaged
    {
        var size = typeof(T) == typeof(double) ? Philox.DoubleGroup : Philox.SingleGroup;
        Span<uint> state = stackalloc uint[StateWords];
        Span<T> group = stackalloc T[Philox.SingleGroup];
        var done = 0;
        while (done < destination.Length)
        {
            var n = start + done;
            var (block, p) = (n / Block, (int)(n % Block));
            var end = done + Math.Min(Block - p, destination.Length - done);
            Seed(key, step, block, state);
            Advance(state, p / size);
            if (p % size != 0)
            {
                Steps(state, 1, group[..size]);
                var take = Math.Min(size - p % size, end - done);
                group.Slice(p % size, take).CopyTo(destination[done..]);
                done += take;
            }
            var whole = (end - done) / size;
            Steps(state, whole, destination.Slice(done, whole * size));
            done += whole * size;
            if (done < end)
            {
                Steps(state, 1, group[..size]);
                group[..(end - done)].CopyTo(destination[done..]);
                done = end;
            }
        }
    }

    /// <summary>The 32 generators' states at the start of block <paramref name="block"/> of (<paramref name="key"/>, <paramref name="step"/>).</summary>
    internal static void Seed(ulong key, long step, long block, Span<uint> state) => Philox.Groups(key ^ Domain, step, 4 * block, 4, state);

    /// <summary>Advances every generator <paramref name="count"/> times without using the words.</summary>
    private static void Advance(Span<uint> state, int count)
    {
        if (count == 0) return;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) Run<Single512, Words512, float>(state, count, default);
        else if (Vector256.IsHardwareAccelerated) Run<Single256, Words256, float>(state, count, default);
        else Run<Single1, Words1, float>(state, count, default);
    }

    /// <summary><paramref name="count"/> steps of normals (32 float32 or 16 float64 each) into <paramref name="normals"/>.</summary>
    private static void Steps<T>(Span<uint> state, int count, Span<T> normals) where T : unmanaged
    {
        if (count == 0) return;
        if (typeof(T) == typeof(double))
        {
            // Words a bounded number of steps at a time, then the double transform of each step's 32 words.
            Span<uint> words = stackalloc uint[32 * 32];
            var doubles = MemoryMarshal.Cast<T, double>(normals);
            for (var first = 0; first < count; first += 32)
            {
                var steps = Math.Min(32, count - first);
                if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) Run<Single512, Words512, uint>(state, steps, words);
                else if (Vector256.IsHardwareAccelerated) Run<Single256, Words256, uint>(state, steps, words);
                else Run<Single1, Words1, uint>(state, steps, words);
                for (var k = 0; k < steps; k++)
                    Philox.BoxMuller(words.Slice(32 * k, 32), doubles.Slice(Philox.DoubleGroup * (first + k), Philox.DoubleGroup));
            }
            return;
        }
        var singles = MemoryMarshal.Cast<T, float>(normals);
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) Run<Single512, Words512, float>(state, count, singles);
        else if (Vector256.IsHardwareAccelerated) Run<Single256, Words256, float>(state, count, singles);
        else Run<Single1, Words1, float>(state, count, singles);
    }

    /// <summary>
    /// <paramref name="count"/> steps of every generator, <typeparamref name="TSingle"/>'s width of lanes at a time, each
    /// step's outputs written to <paramref name="output"/> as 32 float32 normals (<typeparamref name="TOut"/> = float),
    /// as 32 words (uint), or dropped (an empty span); the states are left advanced.
    /// </summary>
    internal static void Run<TSingle, TWords, TOut>(Span<uint> state, int count, Span<TOut> output)
        where TSingle : ISingleLanes<TSingle, TWords>
        where TWords : IWordLanes<TWords>
        where TOut : unmanaged
    {
        for (var i = 0; i < 16; i += TSingle.Count)
        {
            TWords a0 = TWords.Load(state, i), a1 = TWords.Load(state, 16 + i), a2 = TWords.Load(state, 32 + i), a3 = TWords.Load(state, 48 + i);
            TWords b0 = TWords.Load(state, 64 + i), b1 = TWords.Load(state, 80 + i), b2 = TWords.Load(state, 96 + i), b3 = TWords.Load(state, 112 + i);
            for (var k = 0; k < count; k++)
            {
                var a = Next(ref a0, ref a1, ref a2, ref a3);
                var b = Next(ref b0, ref b1, ref b2, ref b3);
                if (output.IsEmpty) continue;
                if (typeof(TOut) == typeof(float))
                    BoxMuller<TSingle, TWords>(a, b, MemoryMarshal.Cast<TOut, float>(output), 32 * k + i);
                else
                {
                    var words = MemoryMarshal.Cast<TOut, uint>(output);
                    TWords.Store(a, words, 32 * k + i);
                    TWords.Store(b, words, 32 * k + 16 + i);
                }
            }
            TWords.Store(a0, state, i); TWords.Store(a1, state, 16 + i); TWords.Store(a2, state, 32 + i); TWords.Store(a3, state, 48 + i);
            TWords.Store(b0, state, 64 + i); TWords.Store(b1, state, 80 + i); TWords.Store(b2, state, 96 + i); TWords.Store(b3, state, 112 + i);
        }
    }

    /// <summary>One xoshiro128++ step of every lane: returns the output and advances the state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TWords Next<TWords>(ref TWords s0, ref TWords s1, ref TWords s2, ref TWords s3) where TWords : IWordLanes<TWords>
    {
        var result = TWords.RotateLeft(s0 + s3, 7) + s0;
        var t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = TWords.RotateLeft(s3, 11);
        return result;
    }

    /// <summary>
    /// The float32 Box–Muller transform of one step's words of these lanes: normals <paramref name="at"/> … (cosine side,
    /// from <paramref name="radii"/> and <paramref name="angles"/>) and <paramref name="at"/> + 16 … (sine side).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BoxMuller<TSingle, TWords>(TWords radii, TWords angles, Span<float> normals, int at)
        where TSingle : ISingleLanes<TSingle, TWords>
        where TWords : IWordLanes<TWords>
    {
        // u = k/2³¹ as m·2^e with m in [√½, √2) (the range reduction of Philox.LogOfUnit), the 2³¹ folded into e.
        var bits = TSingle.Bits(TSingle.Convert((radii >>> 1) | TWords.Word(1))) + TWords.Word(0x800000 - 0x3504F4);
        var e = TSingle.Convert((bits >>> 23) - TWords.Word(127 + 31));
        var x = TSingle.FromBits((bits & TWords.Word(0x7FFFFF)) + TWords.Word(0x3F3504F4)) - TSingle.Float(1);
        // −2 ln(1 + x) = −2x + x² q(x): q interpolates (−2 ln(1 + x) + 2x)/x² at 7 Chebyshev nodes of [√½ − 1, √2 − 1].
        var q = TSingle.Float(0.20377172529697418f);
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(-0.31968191266059875f));
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(0.3426477313041687f));
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(-0.3985811471939087f));
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(0.4996490180492401f));
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(-0.666682243347168f));
        q = TSingle.FusedMultiplyAdd(q, x, TSingle.Float(1.0000017881393433f));
        var linear = TSingle.FusedMultiplyAdd(x, TSingle.Float(-2), e * TSingle.Float(-2 * 0.6931471805599453f));
        var radius = TSingle.Sqrt(TSingle.FusedMultiplyAdd(x * x, q, linear));
        var b = TSingle.Convert(angles & TWords.Word(0x1FFFFFFF)) * TSingle.Float(MathF.PI / 4 / (1 << 29));
        var z = b * b;
        // sin b = b + b·z·s(z) (Cephes' sinf polynomial), cos b = 1 + z·c(z) (c interpolating (cos √z − 1)/z at 3 nodes).
        var s = TSingle.FusedMultiplyAdd(TSingle.FusedMultiplyAdd(TSingle.Float(-1.9515295891E-4f), z, TSingle.Float(8.3321608736E-3f)), z, TSingle.Float(-1.6666654611E-1f));
        var sin = TSingle.FusedMultiplyAdd(b * z, s, b);
        var c = TSingle.FusedMultiplyAdd(TSingle.FusedMultiplyAdd(TSingle.Float(-0.0013661166885867715f), z, TSingle.Float(0.04166141152381897f)), z, TSingle.Float(-0.4999998211860657f));
        var cos = TSingle.FusedMultiplyAdd(z, c, TSingle.Float(1));
        var swap = TWords.ShiftRightArithmetic(angles << 2, 31);
        var first = TSingle.FromBits(TSingle.Select(swap, sin, cos) ^ (angles & TWords.Word(0x80000000)));
        var second = TSingle.FromBits(TSingle.Select(swap, cos, sin) ^ ((angles << 1) & TWords.Word(0x80000000)));
        TSingle.Store(radius * first, normals, at);
        TSingle.Store(radius * second, normals, at + 16);
    }
}
