using System.Numerics;
using static TorchSharp.torch;

namespace Posteriors.Tests.Core;

/// <summary>
/// The default step noise, <see cref="NoiseStream.PhiloxXoshiro"/>: Philox-keyed xoshiro128++ lanes and the fused
/// Box–Muller transform. The properties both generators share (moments, Kolmogorov–Smirnov, streams and steps) are in
/// <see cref="PhiloxTests"/>.
/// </summary>
public class PhiloxXoshiroTests
{
    private const ulong Key = PhiloxTests.Key;

    [Test]
    public void ABlockIsSeededWithItsFourPhiloxGroupsUnderTheDomainKey()
    {
        var state = new uint[PhiloxXoshiro.StateWords];
        const long step = -1, block = 0x1_0000_0003;
        PhiloxXoshiro.Seed(Key, step, block, state);
        var group = new uint[32];
        for (var j = 0; j < 4; j++)
        {
            Philox.Group(Key ^ PhiloxXoshiro.Domain, step, 4 * block + j, group);
            Assert.That(state.AsSpan(32 * j, 32).ToArray(), Is.EqualTo(group), $"group {j}");
        }
    }

    [Test]
    public void EveryLaneIsAXoshiro128PlusPlusGenerator()
    {
        var random = new Random(3);
        var state = Enumerable.Range(0, PhiloxXoshiro.StateWords).Select(_ => (uint)random.NextInt64(1L << 32)).ToArray();
        var initial = state.ToArray();
        const int steps = 40;
        var words = new uint[32 * steps];
        PhiloxXoshiro.Run<Single1, Words1, uint>(state, steps, words);
        for (var lane = 0; lane < 32; lane++)
        {
            // Lane l of set A (l < 16) or B: words (l, 16 + l, 32 + l, 48 + l) of its half of the state.
            var (set, l) = (lane / 16, lane % 16);
            var s = Enumerable.Range(0, 4).Select(w => initial[64 * set + 16 * w + l]).ToArray();
            for (var k = 0; k < steps; k++)
                Assert.That(words[32 * k + 16 * set + l], Is.EqualTo(Xoshiro128PlusPlus(s)), $"lane {lane}, step {k}");
            Assert.That(Enumerable.Range(0, 4).Select(w => state[64 * set + 16 * w + l]), Is.EqualTo(s), $"lane {lane}: the state is left advanced");
        }
    }

    /// <summary>xoshiro128++ 1.0 as its authors publish it: the output, then the state advanced.</summary>
    private static uint Xoshiro128PlusPlus(uint[] s)
    {
        var result = BitOperations.RotateLeft(s[0] + s[3], 7) + s[0];
        var t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = BitOperations.RotateLeft(s[3], 11);
        return result;
    }

    [Test]
    public void EveryVectorWidthMakesTheSameNormals()
    {
        var random = new Random(5);
        for (var trial = 0; trial < 300; trial++)
        {
            var state = Enumerable.Range(0, PhiloxXoshiro.StateWords).Select(_ => (uint)random.NextInt64(1L << 32)).ToArray();
            if (trial == 0) Array.Clear(state, 0, 64);                     // set A all zero: every radius uniform is 2⁻³¹
            if (trial == 1) Array.Fill(state, uint.MaxValue, 64, 64);      // B all ones
            var (scalar, narrow, wide) = (state.ToArray(), state.ToArray(), state.ToArray());
            const int steps = 16;
            float[] one = new float[32 * steps], w256 = new float[32 * steps], w512 = new float[32 * steps];
            PhiloxXoshiro.Run<Single1, Words1, float>(scalar, steps, one);
            Assert.That(one.All(float.IsFinite), Is.True, $"finite, trial {trial}");
            if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
            {
                PhiloxXoshiro.Run<Single256, Words256, float>(narrow, steps, w256);
                Assert.That(w256, Is.EqualTo(one), $"256-bit lanes, trial {trial}");
                Assert.That(narrow, Is.EqualTo(scalar), $"256-bit states, trial {trial}");
            }
            if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            {
                PhiloxXoshiro.Run<Single512, Words512, float>(wide, steps, w512);
                Assert.That(w512, Is.EqualTo(one), $"512-bit lanes, trial {trial}");
                Assert.That(wide, Is.EqualTo(scalar), $"512-bit states, trial {trial}");
            }
        }
    }

    [Test]
    public void FloatNormalsFollowTheBoxMullerFormulaOfTheirWords()
    {
        var state = new uint[PhiloxXoshiro.StateWords];
        PhiloxXoshiro.Seed(Key, 3, 7, state);
        var copy = state.ToArray();
        const int steps = 64;
        var words = new uint[32 * steps];
        var normals = new float[32 * steps];
        PhiloxXoshiro.Run<Single1, Words1, uint>(state, steps, words);
        PhiloxXoshiro.Run<Single1, Words1, float>(copy, steps, normals);
        for (var k = 0; k < steps; k++)
            for (var i = 0; i < 16; i++)
            {
                uint radii = words[32 * k + i], angles = words[32 * k + 16 + i];
                var radius = Math.Sqrt(-2 * Math.Log((float)((radii >> 1) | 1) / Math.Pow(2, 31)));
                var b = (float)(angles & 0x1FFFFFFF) * (Math.PI / 4 / (1 << 29));
                var (cos, sin) = ((angles >> 29) & 1) == 1 ? (Math.Sin(b), Math.Cos(b)) : (Math.Cos(b), Math.Sin(b));
                if ((angles >> 31) == 1) cos = -cos;
                if (((angles >> 30) & 1) == 1) sin = -sin;
                var tolerance = 1e-6 * Math.Max(1, radius);
                Assert.That(normals[32 * k + i], Is.EqualTo(radius * cos).Within(tolerance), $"step {k}, lane {i}, cosine side");
                Assert.That(normals[32 * k + 16 + i], Is.EqualTo(radius * sin).Within(tolerance), $"step {k}, lane {i}, sine side");
            }
    }

    [Test]
    public void TheDrawsAreThoseOfTheFirstRelease()
    {
        // Bits recorded from the generator when it became the default. Every sampler trajectory at T > 0 of a state
        // with this noise stream follows from these draws, so a change here must be deliberate (a new NoiseStream).
        var noise = new StepNoise(NoiseStream.PhiloxXoshiro, Key);
        var single = new float[8];
        noise.Normals<float>(3, 1_000_000, single);
        Assert.That(single.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(PinnedSingle));
        var @double = new double[4];
        noise.Normals<double>(3, 1_000_000, @double);
        Assert.That(@double.Select(BitConverter.DoubleToUInt64Bits), Is.EqualTo(PinnedDouble));
    }

    private static readonly uint[] PinnedSingle = [0xBF61209Eu, 0xBFD2FBB1u, 0x3E9F920Bu, 0x3F176437u, 0x3F51172Du, 0x3EB4082Bu, 0x3DF1D3B5u, 0xBF45AAC7u];
    private static readonly ulong[] PinnedDouble = [0x3FEFAE7DB79703D4UL, 0x3FF1FFEA87E86A54UL, 0x400102B662285026UL, 0xBFE2B463ADFB1CB5UL];

    [Test]
    public void TailsHaveTheFrequencyOfANormal([Values(ScalarType.Float32, ScalarType.Float64)] ScalarType dtype)
    {
        const int n = 1 << 22;
        var x = PhiloxTests.Draw(NoiseStream.PhiloxXoshiro, dtype, n, 23, 0);
        foreach (var threshold in new[] { 2.0, 3.0, 4.0 })
        {
            // The count of |z| > c is binomial(n, p) with p = 2Φ(−c); 5 standard deviations is a 1-in-10⁶ miss.
            var p = 2 * PhiloxTests.NormalCdf(-threshold);
            var count = x.Count(v => Math.Abs(v) > threshold);
            Assert.That(count, Is.EqualTo(n * p).Within(5 * Math.Sqrt(n * p * (1 - p))), $"{dtype}: |z| > {threshold}");
        }
        if (dtype == ScalarType.Float32)
            Assert.That(x.Max(Math.Abs), Is.LessThanOrEqualTo(Math.Sqrt(62 * Math.Log(2)) + 1e-5), "the largest float32 radius");
    }

    [Test]
    public void PartnersLanesNeighboursAndBlocksAreIndependent([Values(ScalarType.Float32, ScalarType.Float64)] ScalarType dtype)
    {
        const int n = 1 << 20;
        var x = PhiloxTests.Draw(NoiseStream.PhiloxXoshiro, dtype, n + PhiloxXoshiro.Block, 29, 0);
        // Lag 1: neighbouring lanes; 8 or 16: the sine partner of a cosine (same radius); 16 or 32: the same lane one
        // step on; 4096: the same position in the next block. Independent normals have corr(z, w) and
        // corr(z² − 1, w² − 1) with standard deviation 1/√n; 5 of them is a 1-in-10⁶ miss.
        foreach (var lag in new[] { 1, 8, 16, 32, PhiloxXoshiro.Block })
        {
            double product = 0, squares = 0;
            for (var i = 0; i < n; i++)
            {
                product += x[i] * x[i + lag];
                squares += (x[i] * x[i] - 1) * (x[i + lag] * x[i + lag] - 1) / 2;
            }
            Assert.That(Math.Abs(product / n), Is.LessThan(5 / Math.Sqrt(n)), $"{dtype}, lag {lag}: correlation");
            Assert.That(Math.Abs(squares / n), Is.LessThan(5 / Math.Sqrt(n)), $"{dtype}, lag {lag}: correlation of squares");
        }
    }
}
