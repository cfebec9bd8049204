using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>Synthetic data sets with a fixed seed, for examples and tests that must run offline.</summary>
public static class Synthetic
{
    /// <summary>
    /// A linear regression problem: x ~ N(0, I) of shape [n, features], y = x·w + b + noise·ε with w, b drawn once.
    /// </summary>
    /// <returns>Inputs, targets, and the true coefficients as a tree with <c>weight</c> [features, 1] and <c>bias</c> [1].</returns>
    public static (Tensor X, Tensor Y, ParameterTree Truth) LinearRegression(int n, int features, double noise, long seed)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Need at least one data point.");
        if (features <= 0) throw new ArgumentOutOfRangeException(nameof(features), features, "Need at least one feature.");
        if (!(noise >= 0) || double.IsInfinity(noise)) throw new ArgumentOutOfRangeException(nameof(noise), noise, "Noise must be finite and non-negative.");
        var g = new Generator((ulong)seed);
        var w = randn(new long[] { features, 1 }, generator: g);
        var b = randn(new long[] { 1 }, generator: g);
        var x = randn(new long[] { n, features }, generator: g);
        var y = Checked.MatMul(x, w).squeeze(1) + b + noise * randn(new long[] { n }, generator: g);
        return (x, y, ParameterTree.From(("weight", w), ("bias", b)));
    }
}
