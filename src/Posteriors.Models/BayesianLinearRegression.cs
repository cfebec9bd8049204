using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>
/// Bayesian linear regression with an unknown noise scale: y = x·w + b + σ ε, ε ~ N(0, 1), with priors
/// w, b ~ N(0, s²) and log σ ~ N(0, 1) (a log-normal prior on the noise scale, so σ stays positive under
/// unconstrained samplers). Parameters: <c>weight</c> [F, 1], <c>bias</c> [1], <c>log_noise</c> [1].
/// </summary>
public sealed class BayesianLinearRegression
{
    /// <summary>Creates the model.</summary>
    /// <param name="features">F, the number of input features.</param>
    /// <param name="dataSize">N, the number of training examples.</param>
    /// <param name="priorSd">s, the prior scale of the coefficients.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size or <paramref name="priorSd"/> is not positive.</exception>
    public BayesianLinearRegression(int features, long dataSize, double priorSd = 1.0)
    {
        if (features < 1) throw new ArgumentOutOfRangeException(nameof(features), features, "Need at least one feature.");
        if (dataSize < 1) throw new ArgumentOutOfRangeException(nameof(dataSize), dataSize, "The data set size N must be positive.");
        Features = features;
        DataSize = dataSize;
        PriorSd = Check.Positive(priorSd, nameof(priorSd));
    }

    /// <summary>F.</summary>
    public int Features { get; }

    /// <summary>N.</summary>
    public long DataSize { get; }

    /// <summary>s.</summary>
    public double PriorSd { get; }

    /// <summary>Zeros for the coefficients and σ = 1, on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public ParameterTree InitialParameters(ScalarType dtype = ScalarType.Float32, Device? device = null) => ParameterTree.From(
        ("weight", zeros(new long[] { Features, 1 }, dtype: dtype, device: device)),
        ("bias", zeros(new long[] { 1 }, dtype: dtype, device: device)),
        ("log_noise", zeros(new long[] { 1 }, dtype: dtype, device: device)));

    /// <summary>log π(θ; (x [B, F], y [B])): mean Gaussian log-likelihood + log prior / N. Aux: the predicted means.</summary>
    public LogPosterior<(Tensor X, Tensor Y)> LogPosterior => (p, batch) =>
    {
        var mean = Checked.MatMul(batch.X, p["weight"]).squeeze(1) + p["bias"];
        var logSigma = p["log_noise"];
        var z = (batch.Y - mean) / logSigma.exp();
        var logLik = -0.5 * z.square() - logSigma - 0.5 * Math.Log(2 * Math.PI);
        var coefficients = ParameterTree.From(("weight", p["weight"]), ("bias", p["bias"]));
        var logPrior = DiagNormal.LogProb(coefficients, 0, PriorSd) + DiagNormal.LogProb(ParameterTree.From(("log_noise", logSigma)), 0, 1);
        return new LogDensityResult(logLik.mean() + logPrior / DataSize, mean);
    };
}
