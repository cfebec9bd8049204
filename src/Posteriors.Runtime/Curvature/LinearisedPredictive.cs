using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// The linearised (GLM) predictive of a Gaussian posterior N(θ̂, diag(σ²)): f(x; θ) ≈ f(x; θ̂) + J (θ − θ̂), so the
/// outputs are Gaussian with mean f(x; θ̂) and covariance J diag(σ²) Jᵀ per datum.
/// </summary>
public static class LinearisedPredictive
{
    /// <summary>The predictive mean [B, K] and covariance [B, K, K] of the outputs.</summary>
    /// <param name="forward">The forward pass at given parameters, for the batch of inputs (outputs [B, K] or [B]).</param>
    /// <param name="mean">θ̂.</param>
    /// <param name="variance">σ², a tree over the parameters (or a subset of them: the others are held at θ̂).</param>
    /// <param name="module">The module the forward evaluates through, if any (nn.Linear fast path).</param>
    public static (Tensor Mean, Tensor Covariance) Compute(Func<ParameterTree, ModelOutput> forward, ParameterTree mean,
        ParameterTree variance, nn.Module? module = null)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(variance);
        var names = variance.Names;
        mean.Select(names).EnsureSameStructure(variance, nameof(variance));
        using var scope = NewDisposeScope();
        Tensor outputs;
        using (no_grad()) outputs = OutputLikelihood.AsMatrix(forward(mean).Outputs).detach().clone();
        var k = outputs.shape[1];
        var sigma2 = cat(variance.Leaves.Select(t => t.reshape(-1)).ToArray());
        var jacobian = new Tensor[k];
        for (long c = 0; c < k; c++)
        {
            var column = c;
            PerDatumLogDensity<int> fc = (p, _) =>
            {
                var o = forward(p);
                return new LogDensityResult(OutputLikelihood.AsMatrix(o.Outputs).select(1, column), wrt: o.Wrt);
            };
            jacobian[c] = PerSampleGradients.Matrix(fc, mean, 0, names, module);
        }
        var j = stack(jacobian, 1);                         // [B, K, P]
        var cov = (j * sigma2).bmm(j.transpose(1, 2));     // J diag(σ²) Jᵀ
        return (outputs.MoveToOuterDisposeScope(), cov.MoveToOuterDisposeScope());
    }
}
