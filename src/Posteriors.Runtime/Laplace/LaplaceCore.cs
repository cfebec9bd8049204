using Posteriors.Curvature;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// What every Laplace variant shares: the state's construction and "precision += this batch's curvature". The
/// variants differ only in the curvature they pass in.
/// </summary>
internal static class LaplaceCore
{
    public static DiagLaplaceState InitDiag(string method, ParameterTree parameters, IEnumerable<string>? subset, InitialPrecision init)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = PerDatum.ResolveSubset(parameters, subset);
        var mode = parameters.Clone();
        return new DiagLaplaceState(method, mode, init.Materialize(mode.Select(names)), 0, TransformExtensions.NotYetEvaluated(parameters));
    }

    public static DenseLaplaceState InitDense(string method, ParameterTree parameters, IEnumerable<string>? subset, InitialPrecision init)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = PerDatum.ResolveSubset(parameters, subset);
        var mode = parameters.Clone();
        var diagonal = init.Materialize(mode.Select(names)).Flatten();
        return new DenseLaplaceState(method, mode, names, diag(diagonal), 0, TransformExtensions.NotYetEvaluated(parameters));
    }

    /// <param name="state">The state.</param>
    /// <param name="curvature">(subset names) → (increment over the subset, mean log density of the batch).</param>
    /// <param name="inplace">Overwrite the state or return a new one.</param>
    public static DiagLaplaceState UpdateDiag(DiagLaplaceState state, Func<IReadOnlyList<string>, (ParameterTree Increment, Tensor Value)> curvature, bool inplace)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var (increment, value) = curvature(state.Precision.Names);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, increment);
        if (inplace)
        {
            using (no_grad())
                for (var i = 0; i < increment.Count; i++) state.Precision.Leaves[i].add_(increment.Leaves[i]);
            state.LogPosterior.copy_(value);
            state.Step++;
            return state;
        }
        var precision = state.Precision.ZipMap(increment, (p, d) => p + d).MoveToOuterDisposeScope();
        return new DiagLaplaceState(state.Method, state.Params.Clone().MoveToOuterDisposeScope(), precision, state.Step + 1,
            value.clone().MoveToOuterDisposeScope());
    }

    public static DenseLaplaceState UpdateDense(DenseLaplaceState state, Func<IReadOnlyList<string>, (Tensor Increment, Tensor Value)> curvature, bool inplace)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var (increment, value) = curvature(state.Subset);
        NonFiniteException.ThrowIfNotFinite(state.Step, value);
        if (!isfinite(increment).all().item<bool>())
            throw new NonFiniteException($"The curvature of the batch has non-finite entries at step {state.Step}.", state.Step, null);
        if (inplace)
        {
            using (no_grad()) state.Precision.add_(increment);
            state.LogPosterior.copy_(value);
            state.Step++;
            return state;
        }
        return new DenseLaplaceState(state.Method, state.Params.Clone().MoveToOuterDisposeScope(), state.Subset,
            (state.Precision + increment).MoveToOuterDisposeScope(), state.Step + 1, value.clone().MoveToOuterDisposeScope());
    }

    /// <summary>Checks that a state was built by the variant it is given to.</summary>
    public static void EnsureMethod(string expected, string actual)
    {
        if (expected != actual)
            throw new ArgumentException($"This state was built by Laplace {actual}, not {expected}.", "state");
    }
}
