using Posteriors.Modeling;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Diagnostics;

/// <summary>
/// Draws posterior samples given a data set: from <paramref name="start"/> (for calibration, the true parameters, which
/// are a draw from that posterior), with noise from <paramref name="seed"/>. Returns the draws (unconstrained trees).
/// </summary>
public delegate IReadOnlyList<ParameterTree> PosteriorSampler<in TBatch>(TBatch data, ParameterTree start, long seed);

/// <summary>The rank statistics of one scalar quantity (an element of a constrained parameter).</summary>
/// <param name="Name">The parameter and element, e.g. <c>Theta[3]</c>.</param>
/// <param name="Ranks">Per replication, how many posterior draws were below the true value (0 … draws).</param>
/// <param name="ChiSquare">Pearson's χ² of the binned ranks against a uniform distribution.</param>
/// <param name="PValue">Its upper-tail probability (bins − 1 degrees of freedom).</param>
public sealed record RankStatistic(string Name, int[] Ranks, double ChiSquare, double PValue);

/// <summary>The outcome of <see cref="SimulationBasedCalibration.Run{TModel, TBatch}"/>.</summary>
/// <param name="Quantities">One rank statistic per scalar quantity, in tree order.</param>
/// <param name="Bins">The number of rank bins of the χ² tests.</param>
public sealed record CalibrationResult(IReadOnlyList<RankStatistic> Quantities, int Bins)
{
    /// <summary>The smallest p-value times the number of quantities (Bonferroni), capped at 1.</summary>
    public double AdjustedMinPValue => Math.Min(1, Quantities.Min(q => q.PValue) * Quantities.Count);
}

/// <summary>
/// Simulation-based calibration (Talts et al., 2018): for each replication draw θ* from the prior, simulate data from
/// θ*, sample the posterior given those data, and record the rank of θ* among the draws. If the log posterior and the
/// sampler are right, every rank is uniform on 0 … L; a mis-scaled likelihood or prior, or a biased sampler, shows as
/// ranks piled in the middle (posterior too wide), at the ends (too narrow) or to one side (biased).
/// </summary>
public static class SimulationBasedCalibration
{
    /// <summary>Runs <paramref name="replications"/> independent replications, in parallel on up to <paramref name="parallelism"/> threads.</summary>
    /// <remarks>
    /// The result does not depend on <paramref name="parallelism"/>. Several threads evaluating TorchSharp 0.107 models
    /// at once have been seen to fail intermittently inside libtorch ("Unknown scalar type"); pass 1 for a run that
    /// must not (the library's own tests do).
    /// </remarks>
    /// <param name="model">The model: its prior draws and its simulator (<see cref="ISimulator{TBatch}"/>).</param>
    /// <param name="sample">The posterior sampler under test; it must return the same number L of draws every time.</param>
    /// <param name="replications">R (≥ 2 × bins).</param>
    /// <param name="seed">Replication r uses seeds derived from (seed, r), so results do not depend on scheduling.</param>
    /// <param name="bins">Rank bins for the χ² tests; L + 1 must be a multiple of it.</param>
    /// <param name="parallelism">Replications run at once (null: one per CPU core).</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    /// <exception cref="InvalidOperationException">The sampler returned a different number of draws, or L + 1 is not a multiple of <paramref name="bins"/>.</exception>
    public static CalibrationResult Run<TModel, TBatch>(TModel model, PosteriorSampler<TBatch> sample, int replications, long seed, int bins = 10,
        int? parallelism = null)
        where TModel : IModel<TBatch>, ISimulator<TBatch>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sample);
        if (bins < 2) throw new ArgumentOutOfRangeException(nameof(bins), bins, "Need at least 2 bins.");
        if (replications < 2 * bins)
            throw new ArgumentOutOfRangeException(nameof(replications), replications, $"Need at least 2 × bins = {2 * bins} replications.");
        if (parallelism is < 1)
            throw new ArgumentOutOfRangeException(nameof(parallelism), parallelism, "Run at least one replication at a time.");

        var ranks = new double[replications][];
        var drawCounts = new int[replications];
        string[]? names = null;
        Parallel.For(0, replications, new ParallelOptions { MaxDegreeOfParallelism = parallelism ?? Environment.ProcessorCount }, r =>
        {
            using var scope = NewDisposeScope();
            var generator = new Generator((ulong)(seed * 1_000_003 + r));
            var truth = model.SamplePrior(generator);
            var data = model.Simulate(model.Constrain(truth), generator);
            var draws = sample(data, truth, seed * 1_000_003 + r);
            var trueValues = Flatten(model.Constrain(truth), out var leafNames);
            names ??= leafNames;
            var below = zeros_like(trueValues);
            foreach (var draw in draws) below += (Flatten(model.Constrain(draw), out _) < trueValues).to_type(trueValues.dtype);
            ranks[r] = below.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
            drawCounts[r] = draws.Count;
        });

        var l = drawCounts[0];
        if (drawCounts.Any(c => c != l))
            throw new InvalidOperationException($"The sampler returned between {drawCounts.Min()} and {drawCounts.Max()} draws; it must return the same number every time.");
        if ((l + 1) % bins != 0)
            throw new InvalidOperationException($"{l} draws give {l + 1} possible ranks, not a multiple of {bins} bins.");
        var quantities = new List<RankStatistic>();
        for (var q = 0; q < names!.Length; q++)
        {
            var r = ranks.Select(row => (int)row[q]).ToArray();
            var counts = new double[bins];
            foreach (var rank in r) counts[rank * bins / (l + 1)]++;
            var expected = (double)replications / bins;
            var chiSquare = counts.Sum(c => (c - expected) * (c - expected) / expected);
            quantities.Add(new RankStatistic(names[q], r, chiSquare, ChiSquareUpperTail(chiSquare, bins - 1)));
        }
        return new CalibrationResult(quantities, bins);
    }

    /// <summary>P(χ²ₖ ≥ x), the regularised upper incomplete gamma Q(k/2, x/2).</summary>
    public static double ChiSquareUpperTail(double x, int degreesOfFreedom)
    {
        if (degreesOfFreedom < 1) throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom), degreesOfFreedom, "Must be ≥ 1.");
        if (!(x > 0)) return 1;
        var a = degreesOfFreedom / 2.0;
        var z = x / 2;
        var logPrefix = a * Math.Log(z) - z - Modeling.LogProb.LogGamma(a);
        if (z < a + 1)
        {
            // Series for the lower part P(a, z) = e^{−z} z^a / Γ(a) Σ zⁿ / (a (a + 1) … (a + n)).
            double term = 1 / a, sum = term;
            for (var n = 1; n < 1000 && Math.Abs(term) > 1e-16 * Math.Abs(sum); n++)
            {
                term *= z / (a + n);
                sum += term;
            }
            return Math.Max(0, 1 - sum * Math.Exp(logPrefix));
        }
        // Continued fraction for Q(a, z) (modified Lentz).
        double b = z + 1 - a, c = 1 / 1e-300, d = 1 / b, h = d;
        for (var i = 1; i < 1000; i++)
        {
            var an = -i * (i - a);
            b += 2;
            d = an * d + b;
            if (Math.Abs(d) < 1e-300) d = 1e-300;
            c = b + an / c;
            if (Math.Abs(c) < 1e-300) c = 1e-300;
            d = 1 / d;
            var delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(logPrefix) * h;
    }

    /// <summary>Every element of a tree as one vector, with names such as <c>Theta[3]</c>.</summary>
    private static Tensor Flatten(ParameterTree tree, out string[] names)
    {
        var list = new List<string>();
        foreach (var (name, leaf) in tree)
        {
            var n = leaf.numel();
            for (var i = 0; i < n; i++) list.Add(n == 1 ? name : $"{name}[{i}]");
        }
        names = list.ToArray();
        return cat(tree.Leaves.Select(t => t.detach().reshape(-1)).ToArray());
    }
}
