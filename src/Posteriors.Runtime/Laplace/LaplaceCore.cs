using Posteriors.Curvature;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// What every Laplace variant shares: the state's construction and "precision += this batch's curvature" (a sum over
/// the batch's data of per-datum curvature, docs/ALGORITHMS.md §1 and §4). The variants differ only in the curvature
/// they pass in.
/// </summary>
internal static class LaplaceCore
{
    public static DiagLaplaceState InitDiag(string method, ParameterTree parameters, IEnumerable<string>? subset, InitialPrecision init)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = PerDatum.ResolveSubset(parameters, subset);
        using var scope = NewDisposeScope();
        var precision = init.Materialize(parameters.Select(names)).DetachFromDisposeScope();
        return DiagLaplaceState.New(method, parameters, precision);
    }

    public static DenseLaplaceState InitDense(string method, ParameterTree parameters, IEnumerable<string>? subset, InitialPrecision init)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = PerDatum.ResolveSubset(parameters, subset);
        using var scope = NewDisposeScope();
        var precision = diag(init.Materialize(parameters.Select(names)).Flatten()).DetachFromDisposeScope();
        return DenseLaplaceState.New(method, parameters, names, precision);
    }

    /// <param name="state">The state.</param>
    /// <param name="curvature">(subset names) → (increment over the subset, mean log density of the batch, auxiliary output).</param>
    /// <param name="inplace">Overwrite the state or return a new one.</param>
    public static DiagLaplaceState UpdateDiag(DiagLaplaceState state, Func<IReadOnlyList<string>, (ParameterTree Increment, Tensor Value, Tensor? Aux)> curvature,
        bool inplace)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var (increment, value, aux) = curvature(state.Precision.Names);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, increment);
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad())
            for (var i = 0; i < increment.Count; i++) next.Precision.Leaves[i].add_(increment.Leaves[i]);
        return AlgorithmState.Finish(next, value, aux);
    }

    public static DenseLaplaceState UpdateDense(DenseLaplaceState state, Func<IReadOnlyList<string>, (Tensor Increment, Tensor Value, Tensor? Aux)> curvature,
        bool inplace)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var (increment, value, aux) = curvature(state.Subset);
        NonFiniteException.ThrowIfNotFinite(state.Step, value);
        if (!isfinite(increment).all().item<bool>())
            throw new NonFiniteException($"The curvature of the batch has non-finite entries at step {state.Step}.", state.Step, null);
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad()) next.Precision.add_(increment);
        return AlgorithmState.Finish(next, value, aux);
    }

    /// <summary>Checks that a state was built by the variant it is given to.</summary>
    public static void EnsureMethod(string expected, string actual)
    {
        if (expected != actual)
            throw new ArgumentException($"This state was built by Laplace {actual}, not {expected}.", "state");
    }
}
