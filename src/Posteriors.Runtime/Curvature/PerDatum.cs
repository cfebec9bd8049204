using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// A log density with one value per datum: returns a 1-D tensor of length B whose mean over the batch is the
/// batch-normalised log posterior of docs/ALGORITHMS.md §1, i.e. entry i is log p(yᵢ | xᵢ, θ) + log p(θ) / N (or just the
/// log-likelihood, for curvature that leaves the prior to an initial precision). Per-sample gradients, empirical
/// Fisher matrices and the extended Kalman filter need this per-datum form; the model DSL's likelihood method
/// already produces it.
/// </summary>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
/// <param name="parameters">The parameter values θ.</param>
/// <param name="batch">One mini-batch of B data.</param>
/// <returns>
/// A result whose <see cref="LogDensityResult.Value"/> has shape [B]. Entry i must depend on datum i only (no batch
/// normalisation layers). A function that binds θ into a module returns the module's parameters in
/// <see cref="LogDensityResult.Wrt"/>, as for <see cref="LogPosterior{TBatch}"/>.
/// </returns>
public delegate LogDensityResult PerDatumLogDensity<in TBatch>(ParameterTree parameters, TBatch batch);

/// <summary>Conversions and evaluation of <see cref="PerDatumLogDensity{TBatch}"/>.</summary>
public static class PerDatum
{
    /// <summary>The batch mean of <paramref name="perDatum"/>: the scalar log posterior the other algorithms consume.</summary>
    public static LogPosterior<TBatch> Mean<TBatch>(PerDatumLogDensity<TBatch> perDatum)
    {
        ArgumentNullException.ThrowIfNull(perDatum);
        return (p, batch) =>
        {
            var r = perDatum(p, batch).Differentiable("A per-datum computation");
            return new LogDensityResult(r.Value.mean(), r.Aux, r.Wrt);
        };
    }

    /// <summary>
    /// Evaluates <paramref name="perDatum"/> with autograd recording at fresh leaves sharing the storage of
    /// <paramref name="parameters"/>; returns the values [B] and the leaves to differentiate with respect to.
    /// </summary>
    /// <exception cref="InvalidOperationException">The value is not 1-D, or <c>Wrt</c> does not match the parameters.</exception>
    public static (Tensor Values, ParameterTree Wrt) Evaluate<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch)
    {
        var (values, _, wrt) = EvaluateWithAux(perDatum, parameters, batch);
        return (values, wrt);
    }

    /// <summary><see cref="Evaluate{TBatch}"/> that also hands back the function's auxiliary output.</summary>
    internal static (Tensor Values, Tensor? Aux, ParameterTree Wrt) EvaluateWithAux<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters,
        TBatch batch)
    {
        ArgumentNullException.ThrowIfNull(perDatum);
        ArgumentNullException.ThrowIfNull(parameters);
        using var _ = enable_grad();
        var leaves = parameters.Map(t => t.detach().requires_grad_(true));
        var result = perDatum(leaves, batch).Differentiable("A per-datum computation");
        if (result.Value is null || result.Value.dim() != 1)
            throw new InvalidOperationException(
                $"A per-datum log density must return one value per datum (shape [B]); it returned shape [{string.Join(", ", result.Value?.shape ?? Array.Empty<long>())}].");
        if (result.Wrt is not null) parameters.EnsureSameStructure(result.Wrt, nameof(LogDensityResult.Wrt));
        return (result.Value, result.Aux, result.Wrt ?? leaves);
    }

    /// <summary>The names of <paramref name="parameters"/> to differentiate: all of them, or the given subset (checked).</summary>
    /// <exception cref="KeyNotFoundException">A name of the subset is not in the tree.</exception>
    /// <exception cref="ArgumentException">The subset is empty.</exception>
    public static IReadOnlyList<string> ResolveSubset(ParameterTree parameters, IEnumerable<string>? subset)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (subset is null) return parameters.Names;
        var selected = parameters.Select(subset);
        if (selected.Count == 0)
            throw new ArgumentException("The parameter subset is empty; pass null for all parameters.", nameof(subset));
        return selected.Names;
    }
}
