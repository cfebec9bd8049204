using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// The empirical Fisher of a batch, F = Σᵢ gᵢ gᵢᵀ with gᵢ = ∇θ vᵢ the per-sample gradients of a per-datum log density
/// (a sum over the batch, not a mean: Laplace adds one batch's curvature per update).
/// </summary>
public static class EmpiricalFisher
{
    /// <summary>diag(F) = Σᵢ gᵢ², shaped like the selected parameters.</summary>
    /// <inheritdoc cref="PerSampleGradients.Compute{TBatch}" path="/param"/>
    public static ParameterTree Diagonal<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null) =>
        PerSampleGradients.SumOfSquares(perDatum, parameters, batch, subset, module);

    /// <summary>F as a [P, P] matrix over the selected parameters, flattened in the tree's order.</summary>
    /// <inheritdoc cref="PerSampleGradients.Compute{TBatch}" path="/param"/>
    public static Tensor Dense<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        var g = PerSampleGradients.Matrix(perDatum, parameters, batch, subset, module);
        return g.t().mm(g).MoveToOuterDisposeScope();
    }

    /// <summary>F v = Σᵢ gᵢ (gᵢ · v) for a tree <paramref name="v"/> shaped like the selected parameters.</summary>
    /// <param name="perDatum">The per-datum function.</param>
    /// <param name="parameters">Where to differentiate.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="v">The vector, a tree over the selected parameters.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all).</param>
    /// <param name="module">The module the function evaluates through, if any (nn.Linear fast path).</param>
    public static ParameterTree VectorProduct<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        ParameterTree v, IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        ArgumentNullException.ThrowIfNull(v);
        using var scope = NewDisposeScope();
        var g = PerSampleGradients.Matrix(perDatum, parameters, batch, subset, module);
        parameters.Select(PerDatum.ResolveSubset(parameters, subset)).EnsureSameStructure(v, nameof(v));
        return v.Unflatten(g.t().mv(g.mv(v.Flatten()))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Hessians of log densities by double backward (autograd.grad with create_graph). Like every curvature of a batch in
/// this library (docs/ALGORITHMS.md §1), the Hessian of a per-datum log density is that of the batch SUM Σᵢ vᵢ; the
/// Hessian of a scalar function is that of the function as given (for a batch-normalised log posterior, the batch mean:
/// 1/B times the sum's).
/// </summary>
public static class Hessian
{
    /// <summary>∇²θ Σᵢ vᵢ · v, the Hessian–vector product of the batch sum of a per-datum log density (the convention of <see cref="Dense{TBatch}"/>).</summary>
    /// <param name="perDatum">The per-datum log density.</param>
    /// <param name="parameters">Where to differentiate.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="v">The vector.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all).</param>
    public static ParameterTree SumVectorProduct<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        ParameterTree v, IEnumerable<string>? subset = null)
    {
        ArgumentNullException.ThrowIfNull(perDatum);
        return VectorProduct<TBatch>((p, b) => { var r = perDatum(p, b).Differentiable("The empirical Fisher"); return new LogDensityResult(r.Value.sum(), r.Aux, r.Wrt); },
            parameters, batch, v, subset);
    }

    /// <summary>
    /// ∇²θ log π · v (the Hessian of the scalar log density as given, negative definite at a mode) for a tree
    /// <paramref name="v"/> over the selected parameters.
    /// </summary>
    /// <param name="logPosterior">The scalar log density.</param>
    /// <param name="parameters">Where to differentiate.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="v">The vector.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all).</param>
    public static ParameterTree VectorProduct<TBatch>(LogPosterior<TBatch> logPosterior, ParameterTree parameters, TBatch batch,
        ParameterTree v, IEnumerable<string>? subset = null)
    {
        ArgumentNullException.ThrowIfNull(v);
        var names = PerDatum.ResolveSubset(parameters, subset);
        parameters.Select(names).EnsureSameStructure(v, nameof(v));
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        var (result, wrt) = Autodiff.Evaluate(logPosterior, parameters, batch);
        var leaves = names.Select(n => wrt[n]).ToArray();
        var g = autograd.grad(new[] { result.Value.reshape(Array.Empty<long>()) }, leaves, retain_graph: true, create_graph: true, allow_unused: true);
        Tensor? dot = null;
        for (var i = 0; i < leaves.Length; i++)
        {
            if (g[i] is null || g[i].IsInvalid) continue;
            var d = (g[i] * v.Leaves[i]).sum();
            dot = dot is null ? d : dot + d;
        }
        if (dot is null || !dot.requires_grad) return v.ZerosLike().MoveToOuterDisposeScope();
        var hv = autograd.grad(new[] { dot }, leaves, allow_unused: true);
        return new ParameterTree(names.Select((n, i) => new KeyValuePair<string, Tensor>(n,
            hv[i] is null || hv[i].IsInvalid ? zeros_like(leaves[i]) : hv[i].detach()))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The dense Hessian ∇²θ Σᵢ vᵢ [P, P] of the batch sum of a per-datum log density over the selected parameters
    /// (one backward pass per parameter element).
    /// </summary>
    /// <inheritdoc cref="PerSampleGradients.Compute{TBatch}" path="/param"/>
    public static Tensor Dense<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null)
    {
        var names = PerDatum.ResolveSubset(parameters, subset);
        using var scope = NewDisposeScope();
        using var _ = enable_grad();
        var (values, wrt) = PerDatum.Evaluate(perDatum, parameters, batch);
        var leaves = names.Select(n => wrt[n]).ToArray();
        var g = autograd.grad(new[] { values.sum() }, leaves, retain_graph: true, create_graph: true, allow_unused: true);
        var flat = cat(leaves.Select((l, i) => (g[i] is null || g[i].IsInvalid ? zeros_like(l) : g[i]).reshape(-1)).ToArray());
        var p = flat.shape[0];
        var rows = new Tensor[p];
        for (long j = 0; j < p; j++)
        {
            var gj = flat[j];
            if (!gj.requires_grad) { rows[j] = zeros(p, dtype: flat.dtype, device: flat.device); continue; }
            var h = autograd.grad(new[] { gj }, leaves, retain_graph: true, allow_unused: true);
            rows[j] = cat(leaves.Select((l, i) => (h[i] is null || h[i].IsInvalid ? zeros_like(l) : h[i].detach()).reshape(-1)).ToArray());
        }
        return stack(rows).MoveToOuterDisposeScope();
    }
}
