using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// Log densities and draws of the <see cref="Distribution"/> priors, summed over every element of a tensor. Generated
/// models call these; they are public so hand-written log posteriors can use the same priors.
/// </summary>
public static class Priors
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    /// <summary>Whether the distribution's support is θ &gt; 0 (its parameter must be <see cref="PositiveAttribute"/>).</summary>
    public static bool HasPositiveSupport(Distribution distribution) =>
        distribution is Distribution.HalfNormal or Distribution.HalfCauchy or Distribution.LogNormal
            or Distribution.Gamma or Distribution.Exponential;

    /// <summary>How many arguments the distribution takes.</summary>
    public static int ArgumentCount(Distribution distribution) => distribution switch
    {
        Distribution.Flat => 0,
        Distribution.HalfNormal or Distribution.HalfCauchy or Distribution.Exponential => 1,
        Distribution.StudentT => 3,
        _ => 2,
    };

    /// <summary>
    /// Σ log p(θ) over the elements of <paramref name="theta"/> for a prior on the real line (a scalar tensor of θ's dtype).
    /// </summary>
    /// <exception cref="ArgumentException">The distribution has positive support (use <see cref="LogProbPositive"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range (a scale ≤ 0, a non-finite value).</exception>
    public static Tensor LogProb(Tensor theta, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(theta);
        Validate(distribution, a, b, c);
        var n = theta.numel();
        switch (distribution)
        {
            case Distribution.Flat:
                return zeros(Array.Empty<long>(), dtype: theta.dtype, device: theta.device);
            case Distribution.Normal: // a zero location (the usual case) saves a pass over the parameters
                return (a == 0 ? theta : theta - a).square().sum() * (-0.5 / (b * b)) - n * (Math.Log(b) + HalfLog2Pi);
            case Distribution.Laplace:
                return (theta - a).abs().sum() * (-1 / b) - n * Math.Log(2 * b);
            case Distribution.Cauchy:
                return -((theta - a) / b).square().log1p().sum() - n * Math.Log(Math.PI * b);
            case Distribution.StudentT:
                return ((theta - b) / c).square().div(a).log1p().sum() * (-(a + 1) / 2)
                       + n * (Modeling.LogProb.StudentTConstant(a) - Math.Log(c));
            default:
                throw new ArgumentException(
                    $"{distribution} has positive support: use it on a [Positive] parameter (LogProbPositive).", nameof(distribution));
        }
    }

    /// <summary>
    /// Σ [log p(e^u) + u] over the elements of <paramref name="u"/> = log θ: the prior density of a
    /// <see cref="PositiveAttribute"/> parameter in its unconstrained coordinate, Jacobian included.
    /// Real-line priors (and Flat) apply to θ = e^u as well.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static Tensor LogProbPositive(Tensor u, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(u);
        Validate(distribution, a, b, c);
        var n = u.numel();
        switch (distribution)
        {
            case Distribution.HalfNormal: // log 2 − log a − ½ log 2π − e^{2u}/(2a²), plus u
                return u.sum() - (2 * u).exp().sum() * (0.5 / (a * a)) + n * (Math.Log(2) - Math.Log(a) - HalfLog2Pi);
            case Distribution.HalfCauchy:
                return u.sum() - (u.exp() / a).square().log1p().sum() + n * (Math.Log(2 / Math.PI) - Math.Log(a));
            case Distribution.LogNormal: // log θ ~ N(a, b): in u this is exactly a normal density
                return (u - a).square().sum() * (-0.5 / (b * b)) - n * (Math.Log(b) + HalfLog2Pi);
            case Distribution.Gamma:     // a log b − log Γ(a) + (a − 1) u − b e^u, plus u
                return u.sum() * a - u.exp().sum() * b + n * (a * Math.Log(b) - Modeling.LogProb.LogGamma(a));
            case Distribution.Exponential:
                return u.sum() - u.exp().sum() * a + n * Math.Log(a);
            default:
                return LogProb(u.exp(), distribution, a, b, c) + u.sum();
        }
    }

    /// <summary>
    /// ∇θ <see cref="LogProb"/>: the gradient of the summed log prior in closed form, shaped like <paramref name="theta"/>,
    /// computed without autograd (a model can hand it to the algorithms through <see cref="LogDensityResult.AnalyticGradient"/>).
    /// At the kink of a Laplace prior (θ = loc) it is 0, as autograd's.
    /// </summary>
    /// <exception cref="ArgumentException">The distribution has positive support (use <see cref="GradientPositive"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static Tensor Gradient(Tensor theta, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(theta);
        Validate(distribution, a, b, c);
        using var _ = no_grad();
        switch (distribution)
        {
            case Distribution.Flat:
                return zeros_like(theta);
            case Distribution.Normal:   // −(θ − loc)/scale²
                return (a == 0 ? theta : theta - a) * (-1 / (b * b));
            case Distribution.Laplace:  // −sign(θ − loc)/scale
                return (theta - a).sign_().mul_(-1 / b);
            case Distribution.Cauchy:   // −2z / (scale (1 + z²)), z = (θ − loc)/scale
            {
                var z = (theta - a).div_(b);
                return z.mul(-2 / b).div_(z.square().add_(1));
            }
            case Distribution.StudentT: // −(ν + 1) z / (scale (ν + z²)), z = (θ − loc)/scale
            {
                var z = (theta - b).div_(c);
                return z.mul(-(a + 1) / c).div_(z.square().add_(a));
            }
            default:
                throw new ArgumentException(
                    $"{distribution} has positive support: use it on a [Positive] parameter (GradientPositive).", nameof(distribution));
        }
    }

    /// <summary>
    /// ∇u <see cref="LogProbPositive"/> for u = log θ: the closed-form gradient of the prior in the unconstrained coordinate,
    /// the Jacobian term (+1 per element) included.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static Tensor GradientPositive(Tensor u, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(u);
        Validate(distribution, a, b, c);
        using var _ = no_grad();
        switch (distribution)
        {
            case Distribution.HalfNormal:  // 1 − e^{2u}/a²
                return (2 * u).exp_().mul_(-1 / (a * a)).add_(1);
            case Distribution.HalfCauchy:  // 1 − 2w/(1 + w), w = (e^u/a)²
            {
                var w = u.exp().div_(a).square();
                return w.mul(-2).div_(w + 1).add_(1);
            }
            case Distribution.LogNormal:   // −(u − loc)/scale²
                return (u - a).mul_(-1 / (b * b));
            case Distribution.Gamma:       // shape − rate e^u
                return u.exp().mul_(-b).add_(a);
            case Distribution.Exponential: // 1 − rate e^u
                return u.exp().mul_(-a).add_(1);
            default:                       // d/du [log p(e^u) + u] = p'(e^u)/p(e^u) · e^u + 1
            {
                var theta = u.exp();
                return Gradient(theta, distribution, a, b, c).mul_(theta).add_(1);
            }
        }
    }

    /// <summary>
    /// A draw from the prior shaped like <paramref name="like"/> (its dtype and device), from <paramref name="generator"/>
    /// when given. A Flat prior has nothing to draw from: the draw is a copy of <paramref name="like"/>.
    /// </summary>
    public static Tensor Sample(Tensor like, Distribution distribution, double a = 0, double b = 0, double c = 0, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(like);
        Validate(distribution, a, b, c);
        var shape = like.shape;
        Tensor Randn() => randn(shape, dtype: like.dtype, device: like.device, generator: generator);
        // Uniform on (0, 1) without the endpoints, where inverse CDFs are finite.
        Tensor Uniform() => rand(shape, dtype: like.dtype, device: like.device, generator: generator).clamp(1e-7, 1 - 1e-7);
        Tensor StandardGamma(double shapeParameter) =>
            _standard_gamma(full(shape, shapeParameter, dtype: like.dtype, device: like.device), generator);
        using var _ = no_grad();
        return distribution switch
        {
            Distribution.Flat => like.detach().clone(),
            Distribution.Normal => a + b * Randn(),
            Distribution.Laplace => LaplaceDraw(Uniform() - 0.5, a, b),
            Distribution.Cauchy => a + b * (Math.PI * (Uniform() - 0.5)).tan(),
            Distribution.StudentT => b + c * Randn() / (2 * StandardGamma(a / 2) / a).sqrt(),
            Distribution.HalfNormal => (a * Randn()).abs(),
            Distribution.HalfCauchy => (a * (Math.PI * (Uniform() - 0.5)).tan()).abs(),
            Distribution.LogNormal => (a + b * Randn()).exp(),
            Distribution.Gamma => StandardGamma(a) / b,
            Distribution.Exponential => -Uniform().log() / a,
            _ => throw new ArgumentOutOfRangeException(nameof(distribution), distribution, "Unknown distribution."),
        };
    }

    /// <summary>
    /// A draw of u = log θ for a <see cref="PositiveAttribute"/> parameter, shaped like <paramref name="like"/> (θ's current
    /// value). A real-line prior on a positive parameter is its restriction to θ &gt; 0: it is drawn folded (|draw|),
    /// which is exact for a prior centred at 0. A Flat prior keeps log of the current value.
    /// </summary>
    public static Tensor SamplePositive(Tensor like, Distribution distribution, double a = 0, double b = 0, double c = 0, Generator? generator = null)
    {
        var draw = Sample(like, distribution, a, b, c, generator);
        using var _ = no_grad();
        return (HasPositiveSupport(distribution) || distribution == Distribution.Flat ? draw : draw.abs()).log();
    }

    private static Tensor LaplaceDraw(Tensor centred, double loc, double scale) =>
        loc - scale * centred.sign() * (1 - 2 * centred.abs()).log();

    /// <summary>Checks a prior's arguments: the same rules the compile-time check PST0004 applies.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the argument and its value.</exception>
    public static void Validate(Distribution distribution, double a, double b, double c)
    {
        static void Finite(double v, string name, Distribution d)
        {
            if (!double.IsFinite(v)) throw new ArgumentOutOfRangeException(name, v, $"{d}: '{name}' must be finite.");
        }
        static void Positive(double v, string name, Distribution d)
        {
            if (!(v > 0) || double.IsInfinity(v))
                throw new ArgumentOutOfRangeException(name, v, $"{d}: '{name}' must be positive and finite.");
        }
        switch (distribution)
        {
            case Distribution.Flat: break;
            case Distribution.Normal or Distribution.Laplace or Distribution.Cauchy or Distribution.LogNormal:
                Finite(a, "loc", distribution); Positive(b, "scale", distribution); break;
            case Distribution.StudentT:
                Positive(a, "df", distribution); Finite(b, "loc", distribution); Positive(c, "scale", distribution); break;
            case Distribution.HalfNormal or Distribution.HalfCauchy:
                Positive(a, "scale", distribution); break;
            case Distribution.Gamma:
                Positive(a, "shape", distribution); Positive(b, "rate", distribution); break;
            case Distribution.Exponential:
                Positive(a, "rate", distribution); break;
            default:
                throw new ArgumentOutOfRangeException(nameof(distribution), distribution, "Unknown distribution.");
        }
    }
}
