using Posteriors.Curvature;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a dense Hessian precision (docs/ALGORITHMS.md §4): each batch adds
/// rescale · (−∇²θ Σᵢ log πᵢ) + ε I over the selected parameters. Away from a mode the Hessian may be indefinite;
/// ε and sampling's eigenvalue floor keep the approximation usable.
/// </summary>
public static class DenseHessian
{
    /// <summary>Builds the transform.</summary>
    /// <param name="logPosterior">The per-datum log posterior log πᵢ = log p(yᵢ | xᵢ, θ) + log p(θ) / N.</param>
    /// <param name="initPrecision">The prior precision: a scalar (default 0) or a tree over the selected parameters (a diagonal).</param>
    /// <param name="subset">Names of the parameters to approximate (null: all); the others stay fixed at the mode.</param>
    /// <param name="epsilon">ε ≥ 0 added to the diagonal of every batch's increment.</param>
    /// <param name="rescale">A positive factor on the Hessian (e.g. N / B to let one batch stand for the data set).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epsilon"/> or <paramref name="rescale"/> is out of range.</exception>
    public static DenseHessian<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision? initPrecision = null,
        IEnumerable<string>? subset = null, double epsilon = 0, double rescale = 1) =>
        new(logPosterior, initPrecision ?? 0.0, subset?.ToArray(), Check.NonNegative(epsilon, nameof(epsilon)), Check.Positive(rescale, nameof(rescale)));

    /// <summary>Draws from the approximation; see <see cref="DenseLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(DenseLaplaceState state, long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature, minPrecision);
}

/// <summary>The dense Hessian Laplace transform. See <see cref="DenseHessian"/>.</summary>
public sealed class DenseHessian<TBatch> : ITransform<DenseLaplaceState, TBatch>
{
    private readonly PerDatumLogDensity<TBatch> _logPosterior;
    private readonly InitialPrecision _initPrecision;
    private readonly string[]? _subset;
    private readonly double _epsilon;
    private readonly double _rescale;

    internal DenseHessian(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision initPrecision, string[]? subset, double epsilon, double rescale)
    {
        _logPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        _initPrecision = initPrecision;
        _subset = subset;
        _epsilon = epsilon;
        _rescale = rescale;
    }

    /// <inheritdoc />
    public DenseLaplaceState Init(ParameterTree parameters, long seed = 0) => LaplaceCore.InitDense(nameof(DenseHessian), parameters, _subset, _initPrecision);

    /// <summary>Adds rescale · (−Hessian) + ε I of the batch to the precision.</summary>
    public DenseLaplaceState Update(DenseLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod(nameof(DenseHessian), state.Method);
        return LaplaceCore.UpdateDense(state, names =>
        {
            var h = Hessian.Dense(_logPosterior, state.Params, batch, names);
            var increment = h * -_rescale;
            if (_epsilon > 0) increment = increment + eye(h.shape[0], dtype: h.dtype, device: h.device) * _epsilon;
            LogDensityResult result;
            using (no_grad()) result = _logPosterior(state.Params, batch);
            return (increment, result.Value.mean().detach(), result.Aux?.detach());
        }, inplace);
    }
}
