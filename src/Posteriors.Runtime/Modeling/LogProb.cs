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

    /// <summary>log Poisson(y; λ) with λ = exp(<paramref name="logRate"/>): y log λ − λ − log Γ(y + 1).</summary>
    public static Tensor Poisson(Tensor y, Tensor logRate)
    {
        var counts = y.to_type(logRate.dtype);
        return counts * logRate - logRate.exp() - (counts + 1).lgamma();
    }

    /// <summary>
    /// log NegativeBinomial(y; μ, φ) with mean μ = exp(<paramref name="logMean"/>) and dispersion φ (variance μ + μ²/φ):
    /// log Γ(y + φ) − log Γ(φ) − log Γ(y + 1) + φ log(φ/(φ + μ)) + y log(μ/(φ + μ)).
    /// </summary>
    public static Tensor NegativeBinomial(Tensor y, Tensor logMean, Tensor dispersion)
    {
        var counts = y.to_type(logMean.dtype);
        var logDispersion = dispersion.log();
        var logTotal = logDispersion.logaddexp(logMean);                  // log(φ + μ), stable for large μ
        return (counts + dispersion).lgamma() - dispersion.lgamma() - (counts + 1).lgamma()
               + dispersion * (logDispersion - logTotal) + counts * (logMean - logTotal);
    }

    /// <summary>log NegativeBinomial(y; μ, φ) with a constant dispersion φ.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dispersion"/> is not positive and finite.</exception>
    public static Tensor NegativeBinomial(Tensor y, Tensor logMean, double dispersion)
    {
        Positive(dispersion, nameof(dispersion));
        return NegativeBinomial(y, logMean, tensor(dispersion, dtype: logMean.dtype, device: logMean.device));
    }

    /// <summary>
    /// log Binomial(y; n, p) with p = σ(<paramref name="logits"/>):
    /// log C(n, y) + y logits − n log(1 + e^logits).
    /// </summary>
    public static Tensor Binomial(Tensor y, Tensor logits, Tensor n)
    {
        var (k, trials) = (y.to_type(logits.dtype), n.to_type(logits.dtype));
        return (trials + 1).lgamma() - (k + 1).lgamma() - (trials - k + 1).lgamma() + k * logits - trials * nn.functional.softplus(logits);
    }

    /// <summary>log Binomial(y; n, σ(logits)) with a constant number of trials.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative or not finite.</exception>
    public static Tensor Binomial(Tensor y, Tensor logits, double n)
    {
        if (!(n >= 0) || double.IsInfinity(n)) throw new ArgumentOutOfRangeException(nameof(n), n, "'n' must be a finite count ≥ 0.");
        return Binomial(y, logits, tensor(n, dtype: logits.dtype, device: logits.device));
    }

    /// <summary>log Gamma(x; shape, rate) = shape log rate − log Γ(shape) + (shape − 1) log x − rate x, for x &gt; 0.</summary>
    public static Tensor Gamma(Tensor x, Tensor shape, Tensor rate) =>
        shape * rate.log() - shape.lgamma() + (shape - 1) * x.log() - rate * x;

    /// <summary>log Beta(x; a, b) = (a − 1) log x + (b − 1) log(1 − x) − log B(a, b), for 0 &lt; x &lt; 1.</summary>
    public static Tensor Beta(Tensor x, Tensor a, Tensor b) =>
        (a - 1) * x.log() + (b - 1) * (-x).log1p() - a.lgamma() - b.lgamma() + (a + b).lgamma();

    /// <summary>log LogNormal(x; loc, scale) = log N(log x; loc, scale²) − log x, for x &gt; 0.</summary>
    public static Tensor LogNormal(Tensor x, Tensor loc, Tensor scale)
    {
        var logX = x.log();
        return Normal(logX, loc, scale) - logX;
    }

    /// <summary>log Exponential(x; rate) = log rate − rate x, for x ≥ 0.</summary>
    public static Tensor Exponential(Tensor x, Tensor rate) => rate.log() - rate * x;

    /// <summary>
    /// log N(x; loc, L Lᵀ) for x of shape [..., D] with the lower-triangular Cholesky factor <paramref name="scaleTril"/>
    /// ([D, D] or batched [..., D, D]): −½ |L⁻¹(x − loc)|² − Σ log Lᵢᵢ − (D/2) log 2π, one value per row (shape [...]).
    /// </summary>
    public static Tensor MultivariateNormal(Tensor x, Tensor loc, Tensor scaleTril)
    {
        var d = x.shape[^1];
        var diff = (x - loc).unsqueeze(-1);
        var factor = scaleTril.dim() == 2 ? scaleTril.expand(diff.shape[..^2].Append(d).Append(d).ToArray()) : scaleTril;
        var z = linalg.solve_triangular(factor, diff, upper: false).squeeze(-1);
        return -0.5 * z.square().sum(-1) - scaleTril.diagonal(0, -2, -1).log().sum(-1) - d * HalfLog2Pi;
    }

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
