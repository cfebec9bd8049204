using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// Log densities and draws of the <see cref="Distribution"/> priors, summed over every element of a tensor. Generated
/// models call these with named arguments (<c>loc:</c>, <c>scale:</c>, <c>df:</c>, <c>shape:</c>, <c>rate:</c>); they
/// are public so hand-written log posteriors can use the same priors.
/// </summary>
/// <remarks>
/// An argument is a constant or a tensor (another parameter's value in a hierarchical prior, or a per-element
/// hyperparameter); tensors broadcast against the parameter and must not make it larger. Constants are checked (a scale
/// ≤ 0 throws); tensor arguments are not, since checking them would wait for the device.
/// </remarks>
public static class Priors
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);

    /// <summary>Whether the distribution's support is θ &gt; 0 (its parameter must be <see cref="PositiveAttribute"/>).</summary>
    public static bool HasPositiveSupport(Distribution distribution) =>
        distribution is Distribution.HalfNormal or Distribution.HalfCauchy or Distribution.LogNormal
            or Distribution.Gamma or Distribution.Exponential;

    /// <summary>The names of the distribution's arguments, in the order its documentation lists them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown distribution.</exception>
    public static IReadOnlyList<string> ArgumentNames(Distribution distribution) => distribution switch
    {
        Distribution.Flat => Array.Empty<string>(),
        Distribution.Normal or Distribution.Laplace or Distribution.Cauchy or Distribution.LogNormal => LocScale,
        Distribution.StudentT => DfLocScale,
        Distribution.HalfNormal or Distribution.HalfCauchy => ScaleOnly,
        Distribution.Gamma => ShapeRate,
        Distribution.Exponential => RateOnly,
        Distribution.Uniform => LowHigh,
        Distribution.Beta => AlphaBeta,
        Distribution.Dirichlet or Distribution.LkjCholesky => ConcentrationOnly,
        _ => throw new ArgumentOutOfRangeException(nameof(distribution), distribution, "Unknown distribution."),
    };

    private static readonly string[] LocScale = { "loc", "scale" }, DfLocScale = { "df", "loc", "scale" }, ScaleOnly = { "scale" },
        ShapeRate = { "shape", "rate" }, RateOnly = { "rate" }, LowHigh = { "low", "high" }, AlphaBeta = { "alpha", "beta" },
        ConcentrationOnly = { "concentration" };

    /// <summary>Whether the distribution lives on a bounded set (an interval, the simplex, Cholesky correlation factors).</summary>
    public static bool HasBoundedSupport(Distribution distribution) =>
        distribution is Distribution.Uniform or Distribution.Beta or Distribution.Dirichlet or Distribution.LkjCholesky;

    /// <summary>
    /// Σ log p(θ) over the elements of <paramref name="theta"/> for a prior on the real line (a scalar tensor of θ's dtype).
    /// </summary>
    /// <exception cref="ArgumentException">The distribution has positive support (use <see cref="LogProbPositive"/>), an
    /// argument is missing or does not belong to it, or a tensor argument broadcasts θ to a larger shape.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A constant argument is out of range (a scale ≤ 0, a non-finite value).</exception>
    public static Tensor LogProb(Tensor theta, Distribution distribution, PriorArgument loc = default, PriorArgument scale = default,
        PriorArgument df = default, PriorArgument shape = default, PriorArgument rate = default,
        PriorArgument low = default, PriorArgument high = default, PriorArgument alpha = default, PriorArgument beta = default,
        PriorArgument concentration = default)
    {
        ArgumentNullException.ThrowIfNull(theta);
        var args = new Arguments(distribution, loc, scale, df, shape, rate, low, high, alpha, beta, concentration);
        if (HasPositiveSupport(distribution))
            throw new ArgumentException(
                $"{distribution} has positive support: use it on a [Positive] parameter (LogProbPositive).", nameof(distribution));
        if (distribution == Distribution.Flat) return zeros(Array.Empty<long>(), dtype: theta.dtype, device: theta.device);
        if (HasBoundedSupport(distribution)) return Summed(theta, Bounded(theta, distribution, args));
        if (args.AllConstant) return ConstantLogProb(theta, distribution, args);
        return Summed(theta, RealLine(theta, distribution, args));
    }

    /// <summary>
    /// Σ [log p(e^u) + u] over the elements of <paramref name="u"/> = log θ: the prior density of a
    /// <see cref="PositiveAttribute"/> parameter in its unconstrained coordinate, Jacobian included. A real-line prior
    /// is truncated to θ &gt; 0 and renormalised (StudentT only with loc 0, where the normaliser is ½); Flat stays flat.
    /// <c>theta</c> is θ = e^u when the caller already has it (a generated model computes each constrained value once per
    /// evaluation); it is computed from u when null.
    /// </summary>
    /// <exception cref="ArgumentException">An argument is missing or does not belong to the distribution.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A constant argument is out of range.</exception>
    public static Tensor LogProbPositive(Tensor u, Distribution distribution, PriorArgument loc = default, PriorArgument scale = default,
        PriorArgument df = default, PriorArgument shape = default, PriorArgument rate = default,
        PriorArgument low = default, PriorArgument high = default, PriorArgument alpha = default, PriorArgument beta = default,
        PriorArgument concentration = default, Tensor? theta = null)
    {
        ArgumentNullException.ThrowIfNull(u);
        var args = new Arguments(distribution, loc, scale, df, shape, rate, low, high, alpha, beta, concentration);
        if (distribution == Distribution.Flat) return u.sum();
        if (distribution is Distribution.LogNormal) theta = null; // a normal density in u: θ is not needed
        else theta ??= u.exp();
        if (!HasPositiveSupport(distribution))
            return Summed(u, RealLine(theta!, distribution, args) - LogMassAboveZero(u, distribution, args) + u);
        if (args.AllConstant) return ConstantLogProbPositive(u, theta, distribution, args);
        var (a, b) = (args.FirstTensor(u), args.SecondTensor(u));
        Tensor density = distribution switch
        {
            Distribution.HalfNormal => u - theta!.square() / (2 * a.square()) + Math.Log(2) - a.log() - HalfLog2Pi,
            Distribution.HalfCauchy => u - (theta! / a).square().log1p() + Math.Log(2 / Math.PI) - a.log(),
            Distribution.LogNormal => -0.5 * ((u - a) / b).square() - b.log() - HalfLog2Pi,
            Distribution.Gamma => a * u - b * theta! + a * b.log() - a.lgamma(),
            _ /* Exponential */ => u - a * theta! + a.log(),
        };
        return Summed(u, density);
    }

    /// <summary>
    /// The closed-form derivatives of <see cref="LogProb"/> (or, with <paramref name="positive"/>, of the density of a
    /// <see cref="PositiveAttribute"/> parameter in θ, a real-line prior's truncation included): ∂/∂θ and ∂/∂ each tensor
    /// argument, computed without autograd. θ is the constrained value; pull <see cref="PriorDerivatives.Gradient"/> back
    /// to the unconstrained leaf with the constraint's bijector gradient (for a positive parameter, g θ + 1 in u = log θ).
    /// Generated models call this for their analytic prior gradient.
    /// </summary>
    /// <exception cref="ArgumentException">An argument is missing or does not belong to the distribution.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A constant argument is out of range.</exception>
    public static PriorDerivatives Differentiate(Tensor theta, Distribution distribution, PriorArgument loc = default, PriorArgument scale = default,
        PriorArgument df = default, PriorArgument shape = default, PriorArgument rate = default,
        PriorArgument low = default, PriorArgument high = default, PriorArgument alpha = default, PriorArgument beta = default,
        PriorArgument concentration = default, bool positive = false)
    {
        ArgumentNullException.ThrowIfNull(theta);
        var args = new Arguments(distribution, loc, scale, df, shape, rate, low, high, alpha, beta, concentration);
        if (positive && distribution == Distribution.StudentT) RequireZeroLocation(args);
        var given = new Dictionary<string, PriorArgument>
        {
            ["loc"] = loc, ["scale"] = scale, ["df"] = df, ["shape"] = shape, ["rate"] = rate, ["low"] = low, ["high"] = high,
            ["alpha"] = alpha, ["beta"] = beta, ["concentration"] = concentration,
        };
        var named = ArgumentNames(distribution).ToDictionary(name => name, name => given[name]);
        var truncated = positive && !HasPositiveSupport(distribution) && distribution != Distribution.Flat;
        return new PriorDerivatives(theta, distribution, truncated, named);
    }

    /// <summary>log c_K(η), the normaliser of LKJ(η) over K × K correlation matrices (density c⁻¹ det(R)^(η−1)).</summary>
    /// <remarks>
    /// log c_K(η) = Σ_{m=1}^{K−1} (K − m) [(2η − 2 + K − m) log 2 + 2 log Γ(xₘ) − log Γ(2xₘ)], xₘ = η + (K − m − 1)/2:
    /// the partial correlations are independent, the one in column m (1-based) a Beta(xₘ, xₘ) stretched onto (−1, 1).
    /// </remarks>
    internal static Tensor LkjLogNormaliser(Tensor eta, long k)
    {
        var total = zeros_like(eta);
        for (var m = 1; m < k; m++)
        {
            var x = eta + (k - m - 1) / 2.0;
            total = total + (k - m) * ((2 * eta - 2 + k - m) * Math.Log(2) + 2 * x.lgamma() - (2 * x).lgamma());
        }
        return total;
    }

    /// <summary>∂ log c_K(η)/∂η (see <see cref="LkjLogNormaliser"/>).</summary>
    internal static Tensor LkjLogNormaliserDerivative(Tensor eta, long k)
    {
        var total = zeros_like(eta);
        for (var m = 1; m < k; m++)
        {
            var x = eta + (k - m - 1) / 2.0;
            total = total + (k - m) * (2 * Math.Log(2) + 2 * x.digamma() - 2 * (2 * x).digamma());
        }
        return total;
    }

    /// <summary>
    /// ∇θ <see cref="LogProb"/> for constant arguments <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/> (in the
    /// order of <see cref="ArgumentNames"/>): the gradient of the summed log prior in closed form, shaped like
    /// <paramref name="theta"/>, computed without autograd (a model can hand it to the algorithms through
    /// <see cref="LogDensityResult.AnalyticGradient"/>). At the kink of a Laplace prior (θ = loc) it is 0, as autograd's.
    /// </summary>
    /// <exception cref="NotSupportedException">A bounded prior (Uniform, Beta, Dirichlet, LKJ).</exception>
    /// <exception cref="ArgumentException">The distribution has positive support (use <see cref="GradientPositive"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static Tensor Gradient(Tensor theta, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(theta);
        ValidateConstants(distribution, a, b, c);
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
    /// Checks constant arguments given in the order of <see cref="ArgumentNames"/>; bounded priors (whose gradients go
    /// through their bijectors) have no closed-form gradient here yet.
    /// </summary>
    private static void ValidateConstants(Distribution distribution, double a, double b, double c)
    {
        if (HasBoundedSupport(distribution))
            throw new NotSupportedException($"{distribution}: no closed-form gradient; differentiate its log density with autograd.");
        double[] values = { a, b, c };
        Validate(distribution, ArgumentNames(distribution).Select((name, i) => (name, values[i])).ToDictionary(p => p.name, p => p.Item2));
    }

    /// <summary>
    /// ∇u <see cref="LogProbPositive"/> for u = log θ and constant arguments (in the order of <see cref="ArgumentNames"/>):
    /// the closed-form gradient of the prior in the unconstrained coordinate, the Jacobian term (+1 per element) included
    /// (a truncated real-line prior's normaliser does not depend on u).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static Tensor GradientPositive(Tensor u, Distribution distribution, double a = 0, double b = 0, double c = 0)
    {
        ArgumentNullException.ThrowIfNull(u);
        ValidateConstants(distribution, a, b, c);
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
    /// <exception cref="ArgumentException">An argument is missing or does not belong to the distribution.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A constant argument is out of range.</exception>
    public static Tensor Sample(Tensor like, Distribution distribution, PriorArgument loc = default, PriorArgument scale = default,
        PriorArgument df = default, PriorArgument shape = default, PriorArgument rate = default,
        PriorArgument low = default, PriorArgument high = default, PriorArgument alpha = default, PriorArgument beta = default,
        PriorArgument concentration = default, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(like);
        var args = new Arguments(distribution, loc, scale, df, shape, rate, low, high, alpha, beta, concentration);
        using var _ = no_grad();
        if (distribution == Distribution.Flat) return like.detach().clone();
        var size = like.shape;
        Tensor Randn() => randn(size, dtype: like.dtype, device: like.device, generator: generator);
        Tensor Uniform() => OpenUniform(like, generator);
        var (a, b, c) = (args.FirstTensor(like), args.SecondTensor(like), args.ThirdTensor(like));
        if (HasBoundedSupport(distribution)) return Fit(SampleBounded(like, distribution, a, b, generator), like);
        var draw = distribution switch
        {
            Distribution.Normal => a + b * Randn(),
            Distribution.Laplace => a + b * StandardInverseCdf(Distribution.Laplace, Uniform()),
            Distribution.Cauchy => a + b * StandardInverseCdf(Distribution.Cauchy, Uniform()),
            Distribution.StudentT => b + c * Randn() / (2 * StandardGamma(a / 2, size, generator) / a).sqrt(),
            Distribution.HalfNormal => (a * Randn()).abs(),
            Distribution.HalfCauchy => (a * StandardInverseCdf(Distribution.Cauchy, Uniform())).abs(),
            Distribution.LogNormal => (a + b * Randn()).exp(),
            Distribution.Gamma => StandardGamma(a, size, generator) / b,
            _ /* Exponential */ => -Uniform().log() / a,
        };
        return Fit(draw, like);
    }

    /// <summary>
    /// A draw of u = log θ for a <see cref="PositiveAttribute"/> parameter, shaped like <paramref name="like"/> (θ's
    /// current value). A real-line prior on a positive parameter is its truncation to θ &gt; 0, drawn exactly by
    /// inverting its CDF above zero (StudentT only with loc 0, where the truncation is the folded draw). A Flat prior
    /// keeps log of the current value.
    /// </summary>
    /// <exception cref="ArgumentException">An argument is missing or does not belong to the distribution.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A constant argument is out of range.</exception>
    public static Tensor SamplePositive(Tensor like, Distribution distribution, PriorArgument loc = default, PriorArgument scale = default,
        PriorArgument df = default, PriorArgument shape = default, PriorArgument rate = default,
        PriorArgument low = default, PriorArgument high = default, PriorArgument alpha = default, PriorArgument beta = default,
        PriorArgument concentration = default, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(like);
        var args = new Arguments(distribution, loc, scale, df, shape, rate, low, high, alpha, beta, concentration);
        using var _ = no_grad();
        if (HasPositiveSupport(distribution) || distribution == Distribution.Flat)
            return Sample(like, distribution, loc, scale, df, shape, rate, generator: generator).log();
        if (distribution == Distribution.StudentT)
        {
            RequireZeroLocation(args);
            return Sample(like, distribution, loc, scale, df, shape, rate, generator: generator).abs().log();
        }
        // θ = loc − scale·G⁻¹(v) with v uniform on (0, G(loc/scale)) is the standard draw restricted to θ > 0.
        var (a, b) = (args.FirstTensor(like), args.SecondTensor(like));
        var mass = StandardCdf(distribution, a / b);
        var v = OpenUniform(like, generator) * mass;
        var theta = (a - b * StandardInverseCdf(distribution, v)).clamp_min(double.Epsilon);
        return Fit(theta, like).log();
    }

    /// <summary>Checks a prior's constant arguments: the same rules the compile-time check PST0004 applies.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the argument and its value.</exception>
    public static void Validate(Distribution distribution, IReadOnlyDictionary<string, double> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        foreach (var (name, value) in arguments) Validate(distribution, name, value);
    }

    private static void Validate(Distribution distribution, string name, double value)
    {
        if (!double.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{distribution}: '{name}' must be finite.");
        if (name is not ("loc" or "low" or "high") && !(value > 0))
            throw new ArgumentOutOfRangeException(name, value, $"{distribution}: '{name}' must be positive and finite.");
    }

    /// <summary>
    /// Log densities on bounded supports: elementwise for Uniform and Beta; per vector (last dimension, kept as a
    /// size-1 dimension) for Dirichlet; one value for LKJ on a Cholesky factor [K, K] (normalised: see <see cref="LkjLogNormaliser"/>).
    /// </summary>
    private static Tensor Bounded(Tensor theta, Distribution distribution, Arguments args)
    {
        var (a, b) = (args.FirstTensor(theta), args.SecondTensor(theta));
        switch (distribution)
        {
            case Distribution.Uniform:
                return -(b - a).log().expand(theta.shape);
            case Distribution.Beta:
                return (a - 1) * theta.log() + (b - 1) * (-theta).log1p() - a.lgamma() - b.lgamma() + (a + b).lgamma();
            case Distribution.Dirichlet:
            {
                var alpha = a.expand(theta.shape);
                return ((alpha - 1) * theta.log()).sum(-1, keepdim: true) - alpha.lgamma().sum(-1, keepdim: true)
                       + alpha.sum(-1, keepdim: true).lgamma();
            }
            default: // LkjCholesky: Σᵢ (K − i + 2η − 3) log Lᵢᵢ over rows i = 1 … K − 1 (0-based)
            {
                var k = theta.shape[^1];
                var diagonal = theta.diagonal(0, -2, -1).narrow(-1, 1, k - 1);
                var exponents = (k - 3 + 2 * a) - arange(1, k, dtype: theta.dtype, device: theta.device);
                return (exponents * diagonal.log()).sum(-1, keepdim: true) - LkjLogNormaliser(a, k);
            }
        }
    }

    private static Tensor SampleBounded(Tensor like, Distribution distribution, Tensor a, Tensor b, Generator? generator)
    {
        var size = like.shape;
        switch (distribution)
        {
            case Distribution.Uniform:
                return a + (b - a) * rand(size, dtype: like.dtype, device: like.device, generator: generator);
            case Distribution.Beta:
            {
                var x = StandardGamma(a, size, generator);
                return x / (x + StandardGamma(b, size, generator));
            }
            case Distribution.Dirichlet:
            {
                var x = StandardGamma(a, size, generator);
                return x / x.sum(-1, keepdim: true);
            }
            default: // LkjCholesky: partial correlation (i, j) ~ 2 Beta(βⱼ, βⱼ) − 1 with βⱼ = η + (K − 2 − j)/2 (the vine method)
            {
                var k = size[^1];
                var eta = a.to_type(ScalarType.Float64).item<double>();
                var betas = new List<double>();
                for (var i = 1; i < k; i++)
                    for (var j = 0; j < i; j++) betas.Add(eta + (k - 2 - j) / 2.0);
                if (betas.Count == 0) return eye(k, dtype: like.dtype, device: like.device);
                var shape = tensor(betas.ToArray(), dtype: like.dtype, device: like.device);
                var x = _standard_gamma(shape, generator);
                var z = 2 * x / (x + _standard_gamma(shape, generator)) - 1;
                return Bijectors.CholeskyCorrelationForward(z.clamp(-1 + 1e-12, 1 - 1e-12).atanh());
            }
        }
    }

    /// <summary>Elementwise log density of a real-line prior at θ (broadcast with the arguments).</summary>
    private static Tensor RealLine(Tensor theta, Distribution distribution, Arguments args)
    {
        // Constant arguments stay doubles (no scalar tensors): hierarchical priors mix both in the hot path.
        switch (distribution)
        {
            case Distribution.Normal:
                return MinusLog(Divide(Minus(theta, args.First), args.Second).square() * -0.5, args.Second) - HalfLog2Pi;
            case Distribution.Laplace:
                return MinusLog(-Divide(Minus(theta, args.First).abs(), args.Second), args.Second) - Math.Log(2);
            case Distribution.Cauchy:
                return MinusLog(-Divide(Minus(theta, args.First), args.Second).square().log1p(), args.Second) - Math.Log(Math.PI);
            default: // StudentT
            {
                var (a, c) = (args.FirstTensor(theta), args.ThirdTensor(theta));
                return Divide(Minus(theta, args.Second), args.Third).square().div(a).log1p() * (-(a + 1) / 2)
                       + ((a + 1) / 2).lgamma() - (a / 2).lgamma() - 0.5 * (a * Math.PI).log() - c.log();
            }
        }
    }

    private static Tensor Minus(Tensor x, PriorArgument a) => a.Tensor is { } t ? x - t : a.Value == 0 ? x : x - a.Value;

    private static Tensor Divide(Tensor x, PriorArgument a) => a.Tensor is { } t ? x / t : x / a.Value;

    private static Tensor MinusLog(Tensor x, PriorArgument a) => a.Tensor is { } t ? x - t.log() : x - Math.Log(a.Value);

    /// <summary>log P(θ &gt; 0) of a real-line prior (the truncation's normaliser), elementwise.</summary>
    private static Tensor LogMassAboveZero(Tensor like, Distribution distribution, Arguments args)
    {
        if (distribution == Distribution.StudentT)
        {
            RequireZeroLocation(args);
            return tensor(-Math.Log(2), dtype: like.dtype, device: like.device);
        }
        var (a, b) = (args.FirstTensor(like), args.SecondTensor(like));
        return StandardCdf(distribution, a / b).log();
    }

    private static void RequireZeroLocation(Arguments args)
    {
        if (args.Loc.Tensor is not null || args.Loc.Value != 0)
            throw new ArgumentException(
                $"StudentT on a [Positive] parameter needs loc 0 (got {args.Loc}): its truncation to θ > 0 has no closed form otherwise.", "loc");
    }

    /// <summary>The CDF G of the standard (loc 0, scale 1) distribution.</summary>
    private static Tensor StandardCdf(Distribution distribution, Tensor t) => distribution switch
    {
        Distribution.Normal => special.ndtr(t),
        Distribution.Laplace => where(t >= 0, 1 - 0.5 * (-t.abs()).exp(), 0.5 * (-t.abs()).exp()),
        _ /* Cauchy */ => 0.5 + t.atan() / Math.PI,
    };

    /// <summary>G⁻¹ of the standard distribution, for v in (0, 1).</summary>
    private static Tensor StandardInverseCdf(Distribution distribution, Tensor v) => distribution switch
    {
        Distribution.Normal => special.ndtri(v),
        Distribution.Laplace => -(v - 0.5).sign() * (1 - 2 * (v - 0.5).abs()).log(),
        _ /* Cauchy */ => (Math.PI * (v - 0.5)).tan(),
    };

    /// <summary>Uniform on (0, 1) without the endpoints, where inverse CDFs are finite.</summary>
    private static Tensor OpenUniform(Tensor like, Generator? generator) =>
        rand(like.shape, dtype: like.dtype, device: like.device, generator: generator).clamp(1e-7, 1 - 1e-7);

    private static Tensor StandardGamma(Tensor shape, long[] size, Generator? generator) =>
        _standard_gamma(shape.expand(size).contiguous(), generator);

    /// <summary>The sum of an elementwise density that must not be larger than θ (tensor arguments broadcast into it).</summary>
    private static Tensor Summed(Tensor theta, Tensor density)
    {
        if (density.numel() > theta.numel())
            throw new ArgumentException(
                $"A tensor prior argument broadcasts the parameter of shape {Trees.ParameterTree.Shape(theta)} to {Trees.ParameterTree.Shape(density)}; " +
                "prior arguments must broadcast to the parameter's own shape.");
        return density.sum();
    }

    /// <summary>A draw shaped like the parameter (a draw from tensor arguments has their broadcast shape).</summary>
    private static Tensor Fit(Tensor draw, Tensor like)
    {
        if (!draw.shape.SequenceEqual(like.shape))
        {
            if (draw.numel() > like.numel())
                throw new ArgumentException(
                    $"A tensor prior argument broadcasts the parameter of shape {Trees.ParameterTree.Shape(like)} to {Trees.ParameterTree.Shape(draw)}; " +
                    "prior arguments must broadcast to the parameter's own shape.");
            draw = draw.expand(like.shape).clone();
        }
        return draw.to_type(like.dtype);
    }

    private static Tensor ConstantLogProb(Tensor theta, Distribution distribution, Arguments args)
    {
        var n = theta.numel();
        var (a, b, c) = (args.FirstValue, args.SecondValue, args.ThirdValue);
        return distribution switch
        {
            // a zero location (the usual case) saves a pass over the parameters
            Distribution.Normal => (a == 0 ? theta : theta - a).square().sum() * (-0.5 / (b * b)) - n * (Math.Log(b) + HalfLog2Pi),
            Distribution.Laplace => (theta - a).abs().sum() * (-1 / b) - n * Math.Log(2 * b),
            Distribution.Cauchy => -((theta - a) / b).square().log1p().sum() - n * Math.Log(Math.PI * b),
            _ /* StudentT */ => ((theta - b) / c).square().div(a).log1p().sum() * (-(a + 1) / 2)
                                + n * (Modeling.LogProb.StudentTConstant(a) - Math.Log(c)),
        };
    }

    private static Tensor ConstantLogProbPositive(Tensor u, Tensor? theta, Distribution distribution, Arguments args)
    {
        var n = u.numel();
        var (a, b) = (args.FirstValue, args.SecondValue);
        return distribution switch
        {
            // One reduction per term: the Jacobian u joins the elementwise part before the sum.
            // log 2 − log a − ½ log 2π − e^{2u}/(2a²), plus u
            Distribution.HalfNormal => (u - theta!.square() * (0.5 / (a * a))).sum() + n * (Math.Log(2) - Math.Log(a) - HalfLog2Pi),
            Distribution.HalfCauchy => (u - (theta! / a).square().log1p()).sum() + n * (Math.Log(2 / Math.PI) - Math.Log(a)),
            // log θ ~ N(a, b): in u this is exactly a normal density
            Distribution.LogNormal => (u - a).square().sum() * (-0.5 / (b * b)) - n * (Math.Log(b) + HalfLog2Pi),
            // a log b − log Γ(a) + (a − 1) u − b e^u, plus u
            Distribution.Gamma => (u * a - theta! * b).sum() + n * (a * Math.Log(b) - Modeling.LogProb.LogGamma(a)),
            _ /* Exponential */ => (u - theta! * a).sum() + n * Math.Log(a),
        };
    }

    /// <summary>A prior's arguments in the distribution's documented order, checked once.</summary>
    private readonly struct Arguments
    {
        private readonly PriorArgument _first, _second, _third;

        public Arguments(Distribution distribution, PriorArgument loc, PriorArgument scale, PriorArgument df, PriorArgument shape,
            PriorArgument rate, PriorArgument low, PriorArgument high, PriorArgument alpha, PriorArgument beta, PriorArgument concentration)
        {
            var names = ArgumentNames(distribution);
            PriorArgument Take(string name, PriorArgument value)
            {
                var position = Array.IndexOf((string[])names, name);
                if (!value.IsSet)
                {
                    if (position >= 0)
                        throw new ArgumentException($"{distribution} needs the argument '{name}' ({string.Join(", ", names)}).", name);
                    return value;
                }
                if (position < 0)
                    throw new ArgumentException(
                        $"{distribution} has no argument '{name}'; it takes {(names.Count == 0 ? "none" : string.Join(", ", names))}.", name);
                if (value.Tensor is null) Validate(distribution, name, value.Value);
                return value;
            }
            (loc, scale, df, shape, rate) = (Take("loc", loc), Take("scale", scale), Take("df", df), Take("shape", shape), Take("rate", rate));
            (low, high, alpha, beta, concentration) =
                (Take("low", low), Take("high", high), Take("alpha", alpha), Take("beta", beta), Take("concentration", concentration));
            (_first, _second, _third) = distribution switch
            {
                Distribution.StudentT => (df, loc, scale),
                Distribution.HalfNormal or Distribution.HalfCauchy => (scale, default, default),
                Distribution.Gamma => (shape, rate, default),
                Distribution.Exponential => (rate, default(PriorArgument), default(PriorArgument)),
                Distribution.Uniform => (low, high, default),
                Distribution.Beta => (alpha, beta, default),
                Distribution.Dirichlet or Distribution.LkjCholesky => (concentration, default, default),
                _ => (loc, scale, default),
            };
            Loc = loc;
            AllConstant = _first.Tensor is null && _second.Tensor is null && _third.Tensor is null;
        }

        public PriorArgument Loc { get; }

        public bool AllConstant { get; }

        public double FirstValue => _first.Value;

        public double SecondValue => _second.Value;

        public double ThirdValue => _third.Value;

        public PriorArgument First => _first;

        public PriorArgument Second => _second;

        public PriorArgument Third => _third;

        public Tensor FirstTensor(Tensor like) => _first.AsTensor(like);

        public Tensor SecondTensor(Tensor like) => _second.AsTensor(like);

        public Tensor ThirdTensor(Tensor like) => _third.AsTensor(like);
    }
}
