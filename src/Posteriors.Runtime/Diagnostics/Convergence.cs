using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Diagnostics;

/// <summary>
/// MCMC diagnostics for one scalar quantity traced over M chains of n draws (rows are chains): effective sample size
/// and split R-hat as defined by Gelman et al. (BDA3, §11.4–11.5) and Stan, and the kinetic temperature of momenta.
/// </summary>
public static class Convergence
{
    /// <summary>
    /// Effective sample size over all chains: M n / τ with τ = −1 + 2 Σ Pₜ, where Pₜ = ρ̂₂ₜ + ρ̂₂ₜ₊₁ are Geyer's pair sums of
    /// the multi-chain autocorrelation ρ̂ₜ = 1 − (W − mean autocovariance)/var⁺, truncated at the first negative pair and
    /// made monotone. iid draws give ≈ M n; an AR(1) with coefficient ρ gives ≈ M n (1 − ρ)/(1 + ρ).
    /// </summary>
    /// <exception cref="ArgumentException">No chains, chains of different lengths, or fewer than 4 draws.</exception>
    public static double EffectiveSampleSize(IReadOnlyList<double[]> chains)
    {
        var (m, n) = Validate(chains, 4);
        var means = chains.Select(c => c.Average()).ToArray();
        var acov = chains.Select((c, j) => Centred(c, means[j])).ToArray();
        var w = acov.Average(x => Autocovariance(x, 0) * n / (n - 1.0));
        var b = m > 1 ? n * Variance(means) : 0.0;
        var varPlus = (n - 1.0) / n * w + b / n;
        if (!(varPlus > 0)) return m * n;                              // a constant trace: no autocorrelation to measure
        double Rho(int t) => 1 - (w - acov.Average(x => Autocovariance(x, t))) / varPlus;

        double tau = -1, previous = double.PositiveInfinity;
        for (var t = 0; t + 1 < n; t += 2)
        {
            var pair = Rho(t) + Rho(t + 1);
            if (pair < 0) break;
            pair = Math.Min(pair, previous);                          // Geyer's initial monotone sequence
            tau += 2 * pair;
            previous = pair;
        }
        return m * n / Math.Max(tau, 1.0 / Math.Log10(m * n));       // Stan's cap against antithetic overestimates
    }

    /// <summary>Effective sample size of one chain.</summary>
    public static double EffectiveSampleSize(double[] chain) => EffectiveSampleSize(new[] { chain });

    /// <summary>
    /// Split R-hat: every chain is cut into halves, then R̂ = sqrt(var⁺ / W) with W the mean within-half variance,
    /// B/n the variance of the half-chain means and var⁺ = (n−1)/n W + B/n. ≈ 1 for mixed chains; unit-variance chains
    /// whose means have variance v across chains give ≈ sqrt(1 + v).
    /// </summary>
    /// <exception cref="ArgumentException">No chains, chains of different lengths, or fewer than 4 draws.</exception>
    public static double SplitRHat(IReadOnlyList<double[]> chains)
    {
        var (_, n) = Validate(chains, 4);
        var half = n / 2;
        var halves = chains.SelectMany(c => new[] { c[..half], c[(n - half)..] }).ToArray();
        var means = halves.Select(h => h.Average()).ToArray();
        var w = halves.Average(h => Variance(h));
        var b = half * Variance(means);
        var varPlus = (half - 1.0) / half * w + b / half;
        return w > 0 ? Math.Sqrt(varPlus / w) : double.NaN;
    }

    /// <summary>A [M, n] tensor of M chains as arrays (for the diagnostics above).</summary>
    public static double[][] Chains(Tensor draws)
    {
        ArgumentNullException.ThrowIfNull(draws);
        if (draws.dim() != 2) throw new ArgumentException($"Expected [chains, draws], got {draws.dim()} dimensions.", nameof(draws));
        using var cpu = draws.detach().to_type(ScalarType.Float64).to(CPU).contiguous();
        var flat = cpu.data<double>().ToArray();
        var n = (int)draws.shape[1];
        return Enumerable.Range(0, (int)draws.shape[0]).Select(j => flat.AsSpan(j * n, n).ToArray()).ToArray();
    }

    /// <summary>
    /// The kinetic temperature σ⁻² mean(m²) over every element of the momenta: ≈ T once a momentum sampler
    /// (SGHMC, SGNHT, BAOA) is at equilibrium, since the momenta are then N(0, σ² T).
    /// </summary>
    public static double KineticTemperature(ParameterTree momenta, double sigma)
    {
        ArgumentNullException.ThrowIfNull(momenta);
        Check.Positive(sigma, nameof(sigma));
        using var scope = NewDisposeScope();
        return momenta.SumOf(m => m.to_type(ScalarType.Float64).square()).item<double>() / momenta.NumberOfElements / (sigma * sigma);
    }

    private static (int M, int N) Validate(IReadOnlyList<double[]> chains, int minimum)
    {
        ArgumentNullException.ThrowIfNull(chains);
        if (chains.Count == 0) throw new ArgumentException("At least one chain is needed.", nameof(chains));
        var n = chains[0].Length;
        for (var j = 0; j < chains.Count; j++)
            if (chains[j].Length != n)
                throw new ArgumentException($"Chain {j} has {chains[j].Length} draws but chain 0 has {n}.", nameof(chains));
        if (n < minimum) throw new ArgumentException($"Each chain needs at least {minimum} draws; there are {n}.", nameof(chains));
        return (chains.Count, n);
    }

    private static double[] Centred(double[] x, double mean) => x.Select(v => v - mean).ToArray();

    /// <summary>Biased (1/n) autocovariance at lag t of a centred series.</summary>
    private static double Autocovariance(double[] centred, int t)
    {
        double s = 0;
        for (var i = 0; i + t < centred.Length; i++) s += centred[i] * centred[i + t];
        return s / centred.Length;
    }

    private static double Variance(double[] x)
    {
        var mean = x.Average();
        return x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1);
    }
}
