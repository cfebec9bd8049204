using static TorchSharp.torch;

namespace Posteriors.Trees;

/// <summary>Diagonal normal distributions over parameter trees: log densities and draws.</summary>
public static class DiagNormal
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    /// <summary>
    /// log N(x; mean, diag(sd²)) summed over every element of every leaf (a scalar tensor).
    /// With <paramref name="normalize"/> false the constant −log σ − ½ log 2π terms are dropped
    /// (−½ Σ ((x − μ)/σ)² remains), which is what a prior needs when σ is fixed.
    /// </summary>
    /// <exception cref="ArgumentException">The trees differ in names or shapes.</exception>
    public static Tensor LogProb(ParameterTree x, ParameterTree mean, ParameterTree sd, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(x);
        x.EnsureSameStructure(mean, nameof(mean));
        x.EnsureSameStructure(sd, nameof(sd));
        Tensor? total = null;
        for (var i = 0; i < x.Count; i++)
        {
            var term = LeafLogProb(x.Leaves[i], mean.Leaves[i], sd.Leaves[i], normalize);
            total = total is null ? term : total + term;
        }
        return total ?? zeros(1, dtype: x.ScalarType, device: x.Device).squeeze();
    }

    /// <summary>log N(x; mean, sd²) for every leaf against scalar <paramref name="mean"/> and <paramref name="sd"/>, summed.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sd"/> is not positive and finite.</exception>
    public static Tensor LogProb(ParameterTree x, double mean, double sd, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!(sd > 0) || double.IsInfinity(sd))
            throw new ArgumentOutOfRangeException(nameof(sd), sd, "The standard deviation must be positive and finite.");
        var total = x.SumOf(t => (t - mean).square()) * (-0.5 / (sd * sd));
        if (normalize) total = total - x.NumberOfElements * (Math.Log(sd) + HalfLog2Pi);
        return total;
    }

    /// <summary>log N(x; mean, sd²) elementwise-summed for one tensor.</summary>
    public static Tensor LeafLogProb(Tensor x, Tensor mean, Tensor sd, bool normalize = true)
    {
        var z = (x - mean) / sd;
        var lp = z.square().sum() * -0.5;
        if (normalize) lp = lp - sd.log().sum() - x.numel() * HalfLog2Pi;
        return lp;
    }

    /// <summary>A draw mean + sd · ξ with ξ ~ N(0, I), per leaf, from <paramref name="generator"/> when given.</summary>
    public static ParameterTree Sample(ParameterTree mean, ParameterTree sd, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(mean);
        mean.EnsureSameStructure(sd, nameof(sd));
        return mean.ZipMap(sd, (m, s) => m + s * randn(m.shape, dtype: m.dtype, device: m.device, generator: generator));
    }

    /// <summary>
    /// <paramref name="count"/> draws at once: every leaf gets a leading dimension of size <paramref name="count"/>.
    /// </summary>
    public static ParameterTree Sample(ParameterTree mean, ParameterTree sd, long count, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(mean);
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        mean.EnsureSameStructure(sd, nameof(sd));
        return mean.ZipMap(sd, (m, s) =>
        {
            var shape = new long[m.dim() + 1];
            shape[0] = count;
            for (var i = 0; i < m.dim(); i++) shape[i + 1] = m.shape[i];
            return m.unsqueeze(0) + s.unsqueeze(0) * randn(shape, dtype: m.dtype, device: m.device, generator: generator);
        });
    }
}
