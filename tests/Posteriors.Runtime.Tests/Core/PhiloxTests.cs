using static TorchSharp.torch;

namespace Posteriors.Tests.Core;

/// <summary>
/// The samplers' counter-based normal generators: Philox-4×32-10 words and Box–Muller normals (<see cref="NoiseStream.PhiloxBoxMuller"/>),
/// and the properties both <see cref="NoiseStream"/>s share (position-only draws, moments, Kolmogorov–Smirnov, independence).
/// </summary>
public class PhiloxTests
{
    internal const ulong Key = 0x0123456789ABCDEFUL;

    [Test]
    public void PhiloxBlocksMatchThePublishedKnownAnswers()
    {
        // Random123's known-answer vectors for philox4x32_10: zeros, all ones, and the digits of π.
        Assert.That(Philox.Block(0, 0, 0, 0, 0, 0), Is.EqualTo((0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)));
        Assert.That(Philox.Block(~0u, ~0u, ~0u, ~0u, ~0u, ~0u), Is.EqualTo((0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)));
        Assert.That(Philox.Block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0),
            Is.EqualTo((0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)));
    }

    [Test]
    public void AGroupIsEightBlocksWordMajorWhateverTheVectorWidth() => AssertGroupIsItsBlocks(Philox.Group, "this machine's path");

    [Test]
    public void TheAvx2PathMakesTheSameGroupsAsTheBlocks()
    {
        Assume.That(System.Runtime.Intrinsics.X86.Avx2.IsSupported, "the 256-bit path needs AVX2");
        AssertGroupIsItsBlocks(Philox.Group256, "256-bit path");
    }

    /// <summary>Group words against Philox blocks one at a time, at a block number above 2³² and a negative step (every counter word in use).</summary>
    private static void AssertGroupIsItsBlocks(Action<ulong, long, long, Span<uint>> fill, string path)
    {
        var words = new uint[32];
        const long step = -1, group = 0x1_0000_0003;
        fill(Key, step, group, words);
        for (var l = 0; l < 8; l++)
        {
            var block = (ulong)group * 8 + (ulong)l;
            var expected = Philox.Block((uint)block, (uint)(block >> 32), uint.MaxValue, uint.MaxValue, unchecked((uint)Key), (uint)(Key >> 32));
            Assert.That((words[l], words[8 + l], words[16 + l], words[24 + l]), Is.EqualTo(expected), $"{path}, block {l}");
        }
    }

    [Test]
    public void EveryVectorWidthMakesTheSameFloatNormals()
    {
        // Random words, plus the edges: zero and all-ones uniforms, and a radius uniform whose mantissa is exactly √2's
        // (where the log's range reduction switches), in every quadrant.
        var random = new Random(5);
        var words = new uint[32];
        float[] wide = new float[32], narrow = new float[32], scalar = new float[32];
        for (var trial = 0; trial < 20_000; trial++)
        {
            for (var i = 0; i < 32; i++) words[i] = (uint)random.NextInt64(1L << 32);
            if (trial == 0)
            {
                (words[0], words[1], words[2], words[3]) = (0, uint.MaxValue, 0xB504F3u << 7, (0xB504F3u << 7) | 0x7F);
                for (var i = 0; i < 16; i++) words[16 + i] = (uint)i << 28 | (i % 2 == 0 ? 0 : 0x0FFFFFFFu);
            }
            Philox.BoxMuller<Single512, Words512>(words, wide);
            Philox.BoxMuller<Single256, Words256>(words, narrow);
            Philox.BoxMuller<Single1, Words1>(words, scalar);
            Assert.That(narrow, Is.EqualTo(wide), $"256-bit lanes, trial {trial}");
            Assert.That(scalar, Is.EqualTo(wide), $"one lane, trial {trial}");
        }
    }

    [Test]
    public void TheDrawsAreThoseTheSamplersHaveAlwaysMade()
    {
        // Bits recorded from the generator as first released. Every sampler trajectory at T > 0 follows from these draws,
        // so a change here must be deliberate (and the state fixtures rewritten).
        var single = new float[8];
        Philox.Normals(Key, 3, 1_000_000, single);
        Assert.That(single.Select(BitConverter.SingleToUInt32Bits),
            Is.EqualTo(new[] { 0xBD766682u, 0x3F59CEFCu, 0xBEE1B30Au, 0xBFF711ABu, 0x3FB3017Cu, 0xBF8E4F2Au, 0xBE149E5Cu, 0x3F3AE8F8u }));
        var @double = new double[4];
        Philox.Normals(Key, 3, 1_000_000, @double);
        Assert.That(@double.Select(BitConverter.DoubleToUInt64Bits),
            Is.EqualTo(new[] { 0x3FEF66D50EAF25A5UL, 0x3FE803F67D71DE82UL, 0xBFF150898B0481CDUL, 0x3FD6A6418FD6A87EUL }));
    }

    [Test]
    public void FloatNormalsFollowTheBoxMullerFormulaOfTheirWords()
    {
        var normals = new float[64];
        Philox.Normals(Key, 3, 32, normals);       // group 1 then group 2
        var words = new uint[32];
        Philox.Group(Key, 3, 1, words);
        for (var i = 0; i < 16; i++)
        {
            var radius = Math.Sqrt(-2 * Math.Log(((words[i] >> 8) + 0.5) / (1 << 24)));
            var angle = 2 * Math.PI * (words[16 + i] >> 8) / (1 << 24);
            Assert.That(normals[i], Is.EqualTo(radius * Math.Cos(angle)).Within(2e-6 * Math.Max(1, radius)));
            Assert.That(normals[16 + i], Is.EqualTo(radius * Math.Sin(angle)).Within(2e-6 * Math.Max(1, radius)));
        }
    }

    [Test]
    public void DrawsDependOnlyOnTheirPositionNotOnHowTheBufferIsFilled([Values] NoiseStream noiseStream)
    {
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            const int n = 10_000;
            var whole = Draw(noiseStream, dtype, n, 5, 0);
            // Pieces starting mid-group and mid-block, filled in parallel on several threads.
            var pieces = new double[n];
            var bounds = new[] { 0, 7, 33, 1000, 1001, 4095, 4099, 8192, 8200, 9999, n };
            Parallel.For(0, bounds.Length - 1, new ParallelOptions { MaxDegreeOfParallelism = 4 }, j =>
            {
                var piece = Draw(noiseStream, dtype, bounds[j + 1] - bounds[j], 5, bounds[j]);
                piece.CopyTo(pieces, bounds[j]);
            });
            Assert.That(pieces, Is.EqualTo(whole), dtype.ToString());
        }
    }

    [Test]
    public void NormalsHaveTheMomentsOfAStandardNormal([Values] NoiseStream noiseStream)
    {
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            const int n = 1 << 20;
            var x = Draw(noiseStream, dtype, n, 11, 0);
            double mean = x.Average(), m2 = x.Average(v => v * v), m3 = x.Average(v => v * v * v), m4 = x.Average(v => v * v * v * v);
            // Standard errors: √(1/n), √(2/n), √(15/n), √(96/n) (Var x^k = E x^2k − (E x^k)²); 5 of them is a 1-in-10⁶ miss.
            Assert.That(mean, Is.EqualTo(0).Within(5 * Math.Sqrt(1.0 / n)), $"{dtype} mean");
            Assert.That(m2, Is.EqualTo(1).Within(5 * Math.Sqrt(2.0 / n)), $"{dtype} variance");
            Assert.That(m3, Is.EqualTo(0).Within(5 * Math.Sqrt(15.0 / n)), $"{dtype} third moment");
            Assert.That(m4, Is.EqualTo(3).Within(5 * Math.Sqrt(96.0 / n)), $"{dtype} fourth moment");
        }
    }

    [Test]
    public void NormalsPassAKolmogorovSmirnovTest([Values] NoiseStream noiseStream)
    {
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            const int n = 200_000;
            var x = Draw(noiseStream, dtype, n, 17, 123);
            Array.Sort(x);
            var d = 0.0;
            for (var i = 0; i < n; i++)
            {
                var f = NormalCdf(x[i]);
                d = Math.Max(d, Math.Max((i + 1.0) / n - f, f - (double)i / n));
            }
            // The asymptotic critical value at level 0.001 is 1.95/√n.
            Assert.That(d, Is.LessThan(1.95 / Math.Sqrt(n)), $"{dtype}: KS statistic");
        }
    }

    [Test]
    public void StreamsStepsAndSeedsAreUncorrelated([Values] NoiseStream noiseStream)
    {
        const int n = 100_000;
        var rng = new Rng();
        double[] Leaf(long seed, long step, int stream, long offset = 0)
        {
            using var t = empty(n, dtype: ScalarType.Float64);
            rng.NormalInto(t, seed, step, stream, offset, noiseStream);
            return t.data<double>().ToArray();
        }
        var a = Leaf(1, 5, 0);
        Assert.That(Leaf(1, 5, 0), Is.EqualTo(a), "the same (seed, step, stream, offset) gives the same draws");
        foreach (var (name, other) in new[] { ("next step", Leaf(1, 6, 0)), ("previous step", Leaf(1, 4, 0)), ("other stream", Leaf(1, 5, 1)),
                     ("other seed", Leaf(2, 5, 0)), ("initial step", Leaf(1, -1, 0)), ("next leaf", Leaf(1, 5, 0, offset: n)) })
        {
            // The sample correlation of independent normals has standard deviation 1/√n; allow 5.
            var corr = a.Zip(other, (x, y) => x * y).Average();
            Assert.That(Math.Abs(corr), Is.LessThan(5 / Math.Sqrt(n)), name);
        }
    }

    [Test]
    public void StridedAndHalfPrecisionLeavesGetTheDrawsOfTheirPositions([Values] NoiseStream noiseStream)
    {
        var rng = new Rng();
        using var contiguous = empty(4, 3);
        rng.NormalInto(contiguous, 3, 2, 1, 10, noiseStream);
        using var strided = empty(3, 4).t();
        Assert.That(strided.is_contiguous(), Is.False);
        rng.NormalInto(strided, 3, 2, 1, 10, noiseStream);
        Assert.That(strided.equal(contiguous).all().item<bool>(), Is.True, "a transposed leaf gets the draws of its row-major positions");
        using var half = empty(new long[] { 4, 3 }, dtype: ScalarType.Float16);
        rng.NormalInto(half, 3, 2, 1, 10, noiseStream);
        Assert.That(half.to_type(ScalarType.Float32).allclose(contiguous, rtol: 1e-3, atol: 1e-3), Is.True);
    }

    /// <summary>Normals <paramref name="start"/> … of step <paramref name="step"/> of the test key, as doubles.</summary>
    internal static double[] Draw(NoiseStream noiseStream, ScalarType dtype, int count, long step, long start)
    {
        var noise = new StepNoise(noiseStream, Key);
        if (dtype == ScalarType.Float64)
        {
            var d = new double[count];
            noise.Normals<double>(step, start, d);
            return d;
        }
        var f = new float[count];
        noise.Normals<float>(step, start, f);
        return f.Select(v => (double)v).ToArray();
    }

    /// <summary>Φ(x); a coarse approximation (Abramowitz–Stegun 7.1.26, 1e-7) would be too close to the KS tolerance at n = 2·10⁵.</summary>
    internal static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>erfc by its continued fraction for |x| &gt; 2 and the Taylor series of erf otherwise; about 1e-14 relative.</summary>
    private static double Erfc(double x)
    {
        if (x < 0) return 2 - Erfc(-x);
        if (x < 2)
        {
            // erf x = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
            double sum = 0, term = x;
            for (var n = 0; n < 60; n++)
            {
                sum += term / (2 * n + 1);
                term *= -x * x / (n + 1);
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }
        // Lentz's continued fraction: erfc x = exp(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))).
        double f = x;
        for (var k = 60; k >= 1; k--) f = x + k / 2.0 / f;
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }
}
