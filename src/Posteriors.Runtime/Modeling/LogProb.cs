using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// Elementwise log densities for writing <see cref="LikelihoodAttribute"/> methods: each returns a tensor shaped like
/// the broadcast of its arguments. Sum over the event dimensions (e.g. <c>.sum(1)</c>), never over the batch.
/// </summary>
public static class LogProb
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    /// <summary>log N(x; loc, scale²).</summary>
    public static Tensor Normal(Tensor x, Tensor loc, Tensor scale)
    {
        var z = (x - loc) / scale;
        return -0.5 * z.square() - scale.log() - HalfLog2Pi;
    }

    /// <summary>log N(x; loc, scale²) with a constant scale.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="scale"/> is not positive and finite.</exception>
    public static Tensor Normal(Tensor x, Tensor loc, double scale)
    {
        Positive(scale, nameof(scale));
        return (x - loc).square() * (-0.5 / (scale * scale)) - (Math.Log(scale) + HalfLog2Pi);
    }

    /// <summary>log Laplace(x; loc, scale) = −|x − loc| / scale − log(2 scale).</summary>
    public static Tensor Laplace(Tensor x, Tensor loc, Tensor scale) => -(x - loc).abs() / scale - (2 * scale).log();

    /// <summary>log Cauchy(x; loc, scale) = −log(π scale) − log(1 + ((x − loc)/scale)²).</summary>
    public static Tensor Cauchy(Tensor x, Tensor loc, Tensor scale) =>
        -((x - loc) / scale).square().log1p() - scale.log() - Math.Log(Math.PI);

    /// <summary>log Student-t(x; df, loc, scale).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="df"/> is not positive and finite.</exception>
    public static Tensor StudentT(Tensor x, double df, Tensor loc, Tensor scale)
    {
        Positive(df, nameof(df));
        var z = (x - loc) / scale;
        return (z.square() / df).log1p() * (-(df + 1) / 2) - scale.log() + StudentTConstant(df);
    }

    /// <summary>log softmax(logits)[labels] over the last dimension: one value per row, shape logits.shape[..^1].</summary>
    public static Tensor Categorical(Tensor logits, Tensor labels) =>
        logits.log_softmax(-1).gather(-1, labels.to_type(ScalarType.Int64).unsqueeze(-1)).squeeze(-1);

    /// <summary>y log σ(logits) + (1 − y) log σ(−logits), elementwise.</summary>
    public static Tensor Bernoulli(Tensor logits, Tensor y) =>
        -nn.functional.binary_cross_entropy_with_logits(logits, y.to_type(logits.dtype), reduction: nn.Reduction.None);

    internal static double StudentTConstant(double df) =>
        LogGamma((df + 1) / 2) - LogGamma(df / 2) - 0.5 * Math.Log(df * Math.PI);

    internal static void Positive(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(name, value, $"'{name}' must be positive and finite.");
    }

    /// <summary>log Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9; relative error below 1e-13).</summary>
    internal static double LogGamma(double x)
    {
        if (x < 0.5) return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        ReadOnlySpan<double> c =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        x -= 1;
        var a = c[0];
        var t = x + 7.5;
        for (var i = 1; i < 9; i++) a += c[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }
}
