using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a dense empirical Fisher precision (docs/ALGORITHMS.md §4): each batch adds
/// Σᵢ ∇θ log πᵢ ∇θ log πᵢᵀ over the selected parameters (P × P memory: restrict to a subset for large models).
/// </summary>
public static class DenseFisher
{
    /// <summary>Builds the transform.</summary>
    /// <param name="logPosterior">The per-datum log posterior log πᵢ = log p(yᵢ | xᵢ, θ) + log p(θ) / N.</param>
    /// <param name="initPrecision">The prior precision: a scalar (default 0) or a tree over the selected parameters (a diagonal).</param>
    /// <param name="subset">Names of the parameters to approximate (null: all); the others stay fixed at the mode.</param>
    /// <param name="module">The module the log posterior evaluates through, if any (nn.Linear fast path).</param>
    public static DenseFisher<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision? initPrecision = null,
        IEnumerable<string>? subset = null, nn.Module? module = null) =>
        new(logPosterior, initPrecision ?? 0.0, subset?.ToArray(), module);

    /// <summary>Draws from the approximation; see <see cref="DenseLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(DenseLaplaceState state, long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature, minPrecision);
}

/// <summary>The dense empirical Fisher Laplace transform. See <see cref="DenseFisher"/>.</summary>
public sealed class DenseFisher<TBatch> : ITransform<DenseLaplaceState, TBatch>
{
    private readonly PerDatumLogDensity<TBatch> _logPosterior;
    private readonly InitialPrecision _initPrecision;
    private readonly string[]? _subset;
    private readonly nn.Module? _module;

    internal DenseFisher(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision initPrecision, string[]? subset, nn.Module? module)
    {
        _logPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        _initPrecision = initPrecision;
        _subset = subset;
        _module = module;
    }

    /// <inheritdoc />
    public DenseLaplaceState Init(ParameterTree parameters, long seed = 0) => LaplaceCore.InitDense(nameof(DenseFisher), parameters, _subset, _initPrecision);

    /// <summary>Adds the batch's Σᵢ gᵢ gᵢᵀ to the precision.</summary>
    public DenseLaplaceState Update(DenseLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod(nameof(DenseFisher), state.Method);
        return LaplaceCore.UpdateDense(state, names =>
        {
            var factors = PerSampleGradients.Factor(_logPosterior, state.Params, batch, names, _module);
            var tree = factors.Materialize();
            var g = cat(tree.Leaves.Select(t => t.reshape(t.shape[0], -1)).ToArray(), 1);
            return (g.t().mm(g), factors.Values.mean(), factors.Aux);
        }, inplace);
    }
}
