using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a dense generalised Gauss–Newton precision (docs/ALGORITHMS.md §4): each batch adds
/// Σᵢ Jᵢᵀ Hᵢ Jᵢ over the selected parameters. Only the likelihood enters; the prior is the initial precision.
/// </summary>
public static class DenseGgn
{
    /// <summary>Builds the transform.</summary>
    /// <param name="model">The forward pass and its outer likelihood.</param>
    /// <param name="initPrecision">The prior precision: a scalar (default 0) or a tree over the selected parameters (a diagonal).</param>
    /// <param name="subset">Names of the parameters to approximate (null: all); the others stay fixed at the mode.</param>
    /// <param name="module">The module the forward evaluates through, if any (nn.Linear fast path).</param>
    public static DenseGgn<TBatch> Build<TBatch>(IForwardModel<TBatch> model, InitialPrecision? initPrecision = null,
        IEnumerable<string>? subset = null, nn.Module? module = null) =>
        new(model, initPrecision ?? 0.0, subset?.ToArray(), module);

    /// <summary>Draws from the approximation; see <see cref="DenseLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(DenseLaplaceState state, long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature, minPrecision);
}

/// <summary>The dense GGN Laplace transform. See <see cref="DenseGgn"/>.</summary>
public sealed class DenseGgn<TBatch> : ITransform<DenseLaplaceState, TBatch>
{
    private readonly IForwardModel<TBatch> _model;
    private readonly InitialPrecision _initPrecision;
    private readonly string[]? _subset;
    private readonly nn.Module? _module;

    internal DenseGgn(IForwardModel<TBatch> model, InitialPrecision initPrecision, string[]? subset, nn.Module? module)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _initPrecision = initPrecision;
        _subset = subset;
        _module = module;
    }

    /// <inheritdoc />
    public DenseLaplaceState Init(ParameterTree parameters, long seed = 0) => LaplaceCore.InitDense(nameof(DenseGgn), parameters, _subset, _initPrecision);

    /// <summary>Adds the batch's dense GGN to the precision.</summary>
    public DenseLaplaceState Update(DenseLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod(nameof(DenseGgn), state.Method);
        return LaplaceCore.UpdateDense(state, names =>
            DiagGgn.Curvature(Ggn.Dense(_model, state.Params, batch, names, _module), DiagGgn.MeanLogLikelihood(_model, state.Params, batch)), inplace);
    }
}
