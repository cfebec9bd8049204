using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Vi;

/// <summary>Small Gaussian targets log π(θ) = log N(θ; m, Σ) over a tree with a 2-D leaf and a 1-D leaf (float64).</summary>
internal static class ViTestTargets
{
    /// <summary>Diagonal target: θ = {"w" [2, 2], "b" [1]}; means and sds fixed.</summary>
    public static (LogPosterior<int> LogPosterior, ParameterTree Mean, ParameterTree Sd, ParameterTree Init) Diagonal()
    {
        var mean = ParameterTree.From(("w", tensor(new double[,] { { 1.0, -0.5 }, { 2.0, 0.3 } })), ("b", tensor(new double[] { -1.5 })));
        var sd = ParameterTree.From(("w", tensor(new double[,] { { 0.5, 1.0 }, { 1.5, 0.8 } })), ("b", tensor(new double[] { 0.7 })));
        LogPosterior<int> logPosterior = (p, _) => DiagNormal.LogProb(p, mean, sd);
        return (logPosterior, mean, sd, mean.ZerosLike());
    }

    /// <summary>Dense 3-D target: θ = {"w" [1, 2], "b" [1]}, Σ = 0.3 A Aᵀ + 0.7 I (docs/ALGORITHMS.md §7's construction).</summary>
    public static (LogPosterior<int> LogPosterior, Tensor Mean, Tensor Covariance, ParameterTree Init) Dense()
    {
        var g = new Generator(21);
        var a = randn(new long[] { 3, 3 }, dtype: float64, generator: g);
        var covariance = 0.3 * a.mm(a.t()) + 0.7 * eye(3, dtype: float64);
        var mean = randn(new long[] { 3 }, dtype: float64, generator: g);
        var precision = linalg.inv(covariance);
        var logDet = linalg.slogdet(covariance).Item2;
        var init = ParameterTree.From(("w", zeros(1, 2, dtype: float64)), ("b", zeros(1, dtype: float64)));
        LogPosterior<int> logPosterior = (p, _) =>
        {
            var d = p.Flatten() - mean;
            return d.dot(precision.mv(d)) * -0.5 - 0.5 * logDet - 1.5 * Math.Log(2 * Math.PI);
        };
        return (logPosterior, mean, covariance, init);
    }
}
