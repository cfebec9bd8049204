using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Curvature;

/// <summary>Small float64 models and their brute-force curvature, shared by the curvature, Laplace and EKF tests.</summary>
internal static class TestModels
{
    public const int N = 100;

    /// <summary>Linear(10→outputs) data: x ~ N(0, I), y from a random linear map (regression targets, or labels when classify).</summary>
    public static (Tensor X, Tensor Y) LinearData(int outputs, OutputLikelihoodKind kind, long seed = 7)
    {
        var g = new Generator((ulong)seed);
        var x = randn(new long[] { N, 10 }, dtype: float64, generator: g);
        var w = randn(new long[] { outputs, 10 }, dtype: float64, generator: g) * 0.5;
        var f = x.mm(w.t());
        return kind switch
        {
            OutputLikelihoodKind.Categorical => (x, f.argmax(1)),
            OutputLikelihoodKind.Bernoulli => (x, (f.squeeze(1).sigmoid() > rand(N, dtype: float64, generator: g)).to_type(float64)),
            _ => (x, f + 0.3 * randn(new long[] { N, outputs }, dtype: float64, generator: g)),
        };
    }

    /// <summary>Parameters of Linear(10→outputs) away from zero, float64.</summary>
    public static ParameterTree LinearParams(int outputs, long seed = 11)
    {
        var g = new Generator((ulong)seed);
        return ParameterTree.From(("weight", randn(new long[] { outputs, 10 }, dtype: float64, generator: g) * 0.3),
            ("bias", randn(new long[] { outputs }, dtype: float64, generator: g) * 0.3));
    }

    public static IForwardModel<(Tensor X, Tensor Y)> LinearModel(OutputLikelihood likelihood) =>
        new ForwardModel<(Tensor X, Tensor Y)>((p, b) => nn.functional.linear(b.X, p["weight"], p["bias"]), b => b.Y, likelihood);

    /// <summary>log πᵢ = log p(yᵢ | xᵢ, θ) + log N(θ; 0, I) / N.</summary>
    public static PerDatumLogDensity<(Tensor X, Tensor Y)> LinearPerDatum(OutputLikelihood likelihood) =>
        LinearModel(likelihood).PerDatumLogDensity(p => DiagNormal.LogProb(p, 0, 1), N);

    public static IEnumerable<(Tensor X, Tensor Y)> Batches((Tensor X, Tensor Y) data, long size)
    {
        for (long i = 0; i < data.X.shape[0]; i += size)
        {
            var n = Math.Min(size, data.X.shape[0] - i);
            yield return (data.X.narrow(0, i, n), data.Y.narrow(0, i, n));
        }
    }

    /// <summary>The gradient of log πᵢ for one datum, from a batch of one (no per-sample machinery involved), flattened.</summary>
    public static Tensor SingleGradient<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree p, TBatch single, IEnumerable<string>? subset = null)
    {
        var g = Autodiff.ValueAndGrad(PerDatum.Mean(perDatum), p, single).Gradient;
        return (subset is null ? g : g.Select(subset)).Flatten();
    }

    /// <summary>Σᵢ Jᵢᵀ Hᵢ Jᵢ with Jᵢ from autograd on datum i alone and Hᵢ written out for the likelihood.</summary>
    public static Tensor BruteForceGgn(IForwardModel<(Tensor X, Tensor Y)> model, ParameterTree p, (Tensor X, Tensor Y) data)
    {
        Tensor? total = null;
        for (long i = 0; i < data.X.shape[0]; i++)
        {
            var x = data.X.narrow(0, i, 1);
            var leaves = p.Map(t => t.detach().requires_grad_(true));
            var f = model.Forward(leaves, (x, data.Y.narrow(0, i, 1))).Outputs.reshape(-1);
            var rows = new List<Tensor>();
            for (long k = 0; k < f.shape[0]; k++)
            {
                var g = autograd.grad(new[] { f[k] }, leaves.Leaves.ToArray(), retain_graph: true);
                rows.Add(cat(g.Select(t => t.reshape(-1)).ToArray()));
            }
            var j = stack(rows);
            var fd = f.detach();
            var h = model.Likelihood.Kind switch
            {
                OutputLikelihoodKind.Categorical => diag(fd.softmax(dim: 0)) - fd.softmax(dim: 0).outer(fd.softmax(dim: 0)),
                OutputLikelihoodKind.Bernoulli => (fd.sigmoid() * (1 - fd.sigmoid())).reshape(1, 1),
                _ => eye(fd.shape[0], dtype: float64) / (model.Likelihood.Sigma * model.Likelihood.Sigma),
            };
            var term = j.t().mm(h).mm(j);
            total = total is null ? term : total + term;
        }
        return total!;
    }

    /// <summary>Bit-identical: same shape and every element equal.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>The largest absolute difference, for messages.</summary>
    public static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<double>();
}
