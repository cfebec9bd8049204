using Posteriors.Diagnostics;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Diagnostics;

public class ConvergenceTests
{
    private static double[][] Ar1(int chains, int n, double rho, int seed, double[]? offsets = null)
    {
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var result = new double[chains][];
        for (var j = 0; j < chains; j++)
        {
            result[j] = new double[n];
            var x = Normal();                                         // stationary start: var 1
            for (var i = 0; i < n; i++)
            {
                result[j][i] = x + (offsets?[j] ?? 0);
                x = rho * x + Math.Sqrt(1 - rho * rho) * Normal();
            }
        }
        return result;
    }

    [Test]
    public void EssOfIidDrawsIsTheirNumber()
    {
        // The ESS estimator's own relative sd for iid draws is about √(2/n)·(a few) — with 4 × 5,000 draws, well under 5%.
        var ess = Convergence.EffectiveSampleSize(Ar1(4, 5000, 0.0, 1));
        Assert.That(ess / 20_000, Is.EqualTo(1.0).Within(0.05));
    }

    [TestCase(0.5)]
    [TestCase(0.9)]
    public void EssOfAnAr1MatchesTheFormula(double rho)
    {
        // ESS = M n (1 − ρ)/(1 + ρ). The estimate's relative error grows with the autocorrelation time (1+ρ)/(1−ρ);
        // with 4 × 20,000 draws it stays within 10% for ρ ≤ 0.9.
        var ess = Convergence.EffectiveSampleSize(Ar1(4, 20_000, rho, 2));
        Assert.That(ess / (80_000 * (1 - rho) / (1 + rho)), Is.EqualTo(1.0).Within(0.10));
    }

    [Test]
    public void SplitRHatIsOneForMixedChainsAndKnownForOffsetChains()
    {
        var mixed = Convergence.SplitRHat(Ar1(4, 4000, 0.3, 3));
        Assert.That(mixed, Is.EqualTo(1.0).Within(0.01));
        // Unit-variance chains with means −1, −1, +1, +1: the sample variance of the 8 half-chain means is 8/7, so
        // R̂ = sqrt((n−1)/n + 8/7) ≈ 1.464 (the estimated means and W are off by O(1/√2000): allow 0.02).
        var offset = Convergence.SplitRHat(Ar1(4, 4000, 0.0, 4, new[] { -1.0, -1.0, 1.0, 1.0 }));
        Assert.That(offset, Is.EqualTo(Math.Sqrt(1999.0 / 2000 + 8.0 / 7)).Within(0.02));
        // A trend inside one chain is what the split catches: a single drifting chain gets R̂ > 1.1.
        var drift = Enumerable.Range(0, 2000).Select(i => i / 500.0).ToArray();
        var chains = Ar1(1, 2000, 0.0, 5);
        Assert.That(Convergence.SplitRHat(new[] { chains[0].Zip(drift, (a, b) => a + b).ToArray() }), Is.GreaterThan(1.1));
    }

    [Test]
    public void ChainsFromATensorAndBadInput()
    {
        var chains = Convergence.Chains(tensor(new float[,] { { 1, 2, 3, 4 }, { 5, 6, 7, 8 } }));
        Assert.That(chains[1], Is.EqualTo(new double[] { 5, 6, 7, 8 }));
        Assert.Throws<ArgumentException>(() => Convergence.SplitRHat(new[] { new double[5], new double[6] }));
        Assert.Throws<ArgumentException>(() => Convergence.EffectiveSampleSize(new[] { new double[2] }));
    }

    [Test]
    public void KineticTemperatureIsMeanSquaredMomentumOverSigmaSquared()
    {
        var momenta = ParameterTree.From(("a", tensor(new[] { 1.0, -2.0 })), ("b", tensor(new[] { 3.0 })));
        Assert.That(Convergence.KineticTemperature(momenta, 2.0), Is.EqualTo((1 + 4 + 9) / 3.0 / 4).Within(1e-12));
        Assert.Throws<ArgumentOutOfRangeException>(() => Convergence.KineticTemperature(momenta, 0));
    }
}
