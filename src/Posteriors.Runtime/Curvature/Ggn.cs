using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// The generalised Gauss–Newton of a batch, G = Σᵢ Jᵢᵀ Hᵢ Jᵢ, with Jᵢ = ∂f(xᵢ; θ)/∂θ and Hᵢ = −∇²_f log p(yᵢ | fᵢ)
/// (docs/ALGORITHMS.md §4). Only the likelihood enters: the prior belongs in a Laplace approximation's initial precision.
/// </summary>
/// <remarks>
/// Writing Hᵢ = Lᵢ Lᵢᵀ (<see cref="OutputLikelihood.HessianFactor"/>), G = Σ_c Σᵢ (Jᵢᵀ l_ic)(Jᵢᵀ l_ic)ᵀ, and Jᵢᵀ l_ic is
/// the per-sample gradient of Σ_k f_ik l_ikc with l held fixed: each of the C columns costs one per-sample gradient
/// computation, which the nn.Linear fast path of <see cref="PerSampleGradients"/> serves.
/// </remarks>
public static class Ggn
{
    /// <summary>diag(G), shaped like the selected parameters.</summary>
    /// <param name="model">The forward model and its outer likelihood.</param>
    /// <param name="parameters">Where to linearise.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all).</param>
    /// <param name="module">The module the forward evaluates through, if any (nn.Linear fast path).</param>
    public static ParameterTree Diagonal<TBatch>(IForwardModel<TBatch> model, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        ParameterTree? total = null;
        foreach (var column in Columns(model, parameters, batch))
        {
            var part = PerSampleGradients.SumOfSquares(column, parameters, batch, subset, module);
            total = total is null ? part : total.Add(part);
        }
        return total!.MoveToOuterDisposeScope();
    }

    /// <summary>G as a [P, P] matrix over the selected parameters, flattened in the tree's order.</summary>
    /// <inheritdoc cref="Diagonal{TBatch}" path="/param"/>
    public static Tensor Dense<TBatch>(IForwardModel<TBatch> model, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        Tensor? total = null;
        foreach (var column in Columns(model, parameters, batch))
        {
            var g = PerSampleGradients.Matrix(column, parameters, batch, subset, module);
            var part = g.t().mm(g);
            total = total is null ? part : total + part;
        }
        return total!.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// G v = Σᵢ Jᵢᵀ Hᵢ Jᵢ v for a tree <paramref name="v"/> over the selected parameters: J v by the double-backward
    /// trick (differentiating Jᵀu with respect to a dummy u), then Jᵀ (H J v) by one more backward pass.
    /// </summary>
    /// <param name="model">The forward model and its outer likelihood.</param>
    /// <param name="parameters">Where to linearise.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="v">The vector, a tree over the selected parameters.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all).</param>
    public static ParameterTree VectorProduct<TBatch>(IForwardModel<TBatch> model, ParameterTree parameters, TBatch batch,
        ParameterTree v, IEnumerable<string>? subset = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(v);
        var names = PerDatum.ResolveSubset(parameters, subset);
        parameters.Select(names).EnsureSameStructure(v, nameof(v));
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        var leavesAll = parameters.Map(t => t.detach().requires_grad_(true));
        var output = model.Forward(leavesAll, batch);
        var wrt = output.Wrt ?? leavesAll;
        var leaves = names.Select(n => wrt[n]).ToArray();
        var f = output.Outputs;
        var u = zeros_like(f).requires_grad_(true);
        var jtu = autograd.grad(new[] { f }, leaves, grad_outputs: new[] { u }, retain_graph: true, create_graph: true, allow_unused: true);
        Tensor? dot = null;
        for (var i = 0; i < leaves.Length; i++)
        {
            if (jtu[i] is null || jtu[i].IsInvalid) continue;
            var d = (jtu[i] * v.Leaves[i]).sum();
            dot = dot is null ? d : dot + d;
        }
        if (dot is null || !dot.requires_grad) return v.ZerosLike().MoveToOuterDisposeScope();
        var jv = autograd.grad(new[] { dot }, new[] { u }, retain_graph: true)[0];
        var hjv = model.Likelihood.HessianVectorProduct(f, jv).reshape(f.shape);
        var result = autograd.grad(new[] { f }, leaves, grad_outputs: new[] { hjv }, allow_unused: true);
        return new ParameterTree(names.Select((n, i) => new KeyValuePair<string, Tensor>(n,
            result[i] is null || result[i].IsInvalid ? zeros_like(leaves[i]) : result[i].detach()))).MoveToOuterDisposeScope();
    }

    /// <summary>One per-datum function per column c of L: vᵢ = Σ_k f_ik(θ) l_ikc with l fixed at the current outputs.</summary>
    private static IEnumerable<PerDatumLogDensity<TBatch>> Columns<TBatch>(IForwardModel<TBatch> model, ParameterTree parameters, TBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(parameters);
        Tensor factor;
        using (no_grad()) factor = model.Likelihood.HessianFactor(model.Forward(parameters, batch).Outputs);
        for (long c = 0; c < factor.shape[2]; c++)
        {
            var l = factor.select(2, c);
            yield return (p, b) =>
            {
                var output = model.Forward(p, b);
                var f = OutputLikelihood.AsMatrix(output.Outputs);
                return new LogDensityResult((f * l).sum(1), wrt: output.Wrt);
            };
        }
    }
}
