using Posteriors.Modeling;
using static TorchSharp.torch;

namespace Posteriors.Models.Hierarchical;

/// <summary>
/// Rubin's eight schools: estimated coaching effects yⱼ with known standard errors σⱼ, and a normal hierarchy
/// θⱼ ~ N(μ, τ²), μ ~ N(0, 5²), τ ~ HalfCauchy(5). One batch is all eight schools (B = N = 8).
/// </summary>
public static class EightSchools
{
    /// <summary>The estimated effects yⱼ.</summary>
    public static readonly double[] Effects = { 28, 8, -3, 7, -1, 1, 18, 12 };

    /// <summary>Their standard errors σⱼ.</summary>
    public static readonly double[] StandardErrors = { 15, 10, 16, 11, 9, 11, 10, 18 };

    /// <summary>The data as one batch (y, σ), float64.</summary>
    public static (Tensor Y, Tensor Sigma) Batch() =>
        (tensor(Effects, dtype: ScalarType.Float64), tensor(StandardErrors, dtype: ScalarType.Float64));

    /// <summary>
    /// Posterior means of μ, τ and θ₁…θ₈ by quadrature: θ integrates out exactly (yⱼ | μ, τ ~ N(μ, σⱼ² + τ²), and
    /// E[θⱼ | μ, τ, y] is the precision-weighted mean of yⱼ and μ), leaving a two-dimensional integral over (μ, log τ).
    /// </summary>
    /// <returns>(E[μ], E[τ], E[θⱼ]) to about four significant digits.</returns>
    public static (double Mu, double Tau, double[] Theta) PosteriorMeansByQuadrature()
    {
        const int muPoints = 801, logTauPoints = 1201;
        double muSum = 0, tauSum = 0, total = 0;
        var thetaSum = new double[8];
        var logWeights = new double[muPoints * logTauPoints];
        var max = double.NegativeInfinity;
        for (var a = 0; a < muPoints; a++)
            for (var b = 0; b < logTauPoints; b++)
            {
                var (mu, u) = (-40 + 80.0 * a / (muPoints - 1), -12 + 18.0 * b / (logTauPoints - 1));
                var tau = Math.Exp(u);
                var lw = -0.5 * mu * mu / 25 - Math.Log(1 + tau * tau / 25) + u;   // N(0, 5²) · HalfCauchy(5) · Jacobian of τ = eᵘ
                for (var j = 0; j < 8; j++)
                {
                    var v = StandardErrors[j] * StandardErrors[j] + tau * tau;
                    lw += -0.5 * (Effects[j] - mu) * (Effects[j] - mu) / v - 0.5 * Math.Log(v);
                }
                logWeights[a * logTauPoints + b] = lw;
                max = Math.Max(max, lw);
            }
        for (var a = 0; a < muPoints; a++)
            for (var b = 0; b < logTauPoints; b++)
            {
                var (mu, u) = (-40 + 80.0 * a / (muPoints - 1), -12 + 18.0 * b / (logTauPoints - 1));
                var tau = Math.Exp(u);
                var w = Math.Exp(logWeights[a * logTauPoints + b] - max);
                total += w;
                muSum += w * mu;
                tauSum += w * tau;
                for (var j = 0; j < 8; j++)
                {
                    var (ps, pt) = (1 / (StandardErrors[j] * StandardErrors[j]), 1 / (tau * tau));
                    thetaSum[j] += w * (ps * Effects[j] + pt * mu) / (ps + pt);
                }
            }
        return (muSum / total, tauSum / total, thetaSum.Select(t => t / total).ToArray());
    }
}

/// <summary>
/// Centred eight schools, written as in Stan: θ ~ N(μ, τ) directly. Its posterior has a funnel (small τ squeezes θ
/// towards μ) that samplers with one step size explore poorly; prefer <see cref="EightSchoolsNonCentred"/>.
/// </summary>
[Model]
public partial class EightSchoolsCentred
{
    /// <summary>μ, the population mean effect.</summary>
    [Prior(Distribution.Normal, 0, 5)] public Tensor Mu = zeros(1, dtype: ScalarType.Float64);

    /// <summary>τ, the population standard deviation.</summary>
    [Prior(Distribution.HalfCauchy, 5), Positive] public Tensor Tau = ones(1, dtype: ScalarType.Float64);

    /// <summary>θⱼ, the schools' true effects.</summary>
    [Prior(Distribution.Normal, nameof(Mu), nameof(Tau))] public Tensor Theta = zeros(8, dtype: ScalarType.Float64);

    /// <summary>log N(yⱼ; θⱼ, σⱼ²) per school.</summary>
    [Likelihood]
    public Tensor LogLikelihood(Tensor y, Tensor sigma) => LogProb.Normal(y, Theta, sigma);
}

/// <summary>Non-centred eight schools: θ = μ + τ η with η ~ N(0, 1), which removes the funnel.</summary>
[Model]
public partial class EightSchoolsNonCentred : ISimulator<(Tensor Y, Tensor Sigma)>
{
    /// <summary>μ, the population mean effect.</summary>
    [Prior(Distribution.Normal, 0, 5)] public Tensor Mu = zeros(1, dtype: ScalarType.Float64);

    /// <summary>τ, the population standard deviation.</summary>
    [Prior(Distribution.HalfCauchy, 5), Positive] public Tensor Tau = ones(1, dtype: ScalarType.Float64);

    /// <summary>η, the standardised school effects.</summary>
    [Prior(Distribution.Normal, 0, 1)] public Tensor Eta = zeros(8, dtype: ScalarType.Float64);

    /// <summary>log N(yⱼ; μ + τ ηⱼ, σⱼ²) per school.</summary>
    [Likelihood]
    public Tensor LogLikelihood(Tensor y, Tensor sigma) => LogProb.Normal(y, Mu + Tau * Eta, sigma);

    /// <summary>Effects yⱼ = μ + τ ηⱼ + σⱼ εⱼ with the real standard errors σⱼ (for simulation-based calibration).</summary>
    public (Tensor Y, Tensor Sigma) Simulate(Trees.ParameterTree parameters, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var sigma = tensor(EightSchools.StandardErrors, dtype: parameters["Eta"].dtype);
        var theta = parameters["Mu"] + parameters["Tau"] * parameters["Eta"];
        return (theta + sigma * randn(8, dtype: sigma.dtype, generator: generator), sigma);
    }
}
