using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a diagonal empirical Fisher precision (docs/ALGORITHMS.md §4): each batch adds Σᵢ (∇θ log πᵢ)²,
/// the squared per-sample gradients of the per-datum log posterior, to the prior's precision. The parameters stay at
/// the mode they were initialised at.
/// </summary>
public static class DiagFisher
{
    /// <summary>Builds the transform.</summary>
    /// <param name="logPosterior">The per-datum log posterior log πᵢ = log p(yᵢ | xᵢ, θ) + log p(θ) / N.</param>
    /// <param name="initPrecision">The prior precision: a scalar (default 0) or a tree over the selected parameters.</param>
    /// <param name="subset">Names of the parameters to approximate (null: all); the others stay fixed at the mode.</param>
    /// <param name="module">The module the log posterior evaluates through, if any: its nn.Linear layers get per-sample gradients from one backward pass.</param>
    public static DiagFisher<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision? initPrecision = null,
        IEnumerable<string>? subset = null, nn.Module? module = null) =>
        new(logPosterior, initPrecision ?? 0.0, subset?.ToArray(), module);

    /// <summary>Draws from the approximation; see <see cref="DiagLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(DiagLaplaceState state, long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature, minPrecision);
}

/// <summary>The diagonal empirical Fisher Laplace transform. See <see cref="DiagFisher"/>.</summary>
public sealed class DiagFisher<TBatch> : ITransform<DiagLaplaceState, TBatch>
{
    private readonly PerDatumLogDensity<TBatch> _logPosterior;
    private readonly InitialPrecision _initPrecision;
    private readonly string[]? _subset;
    private readonly nn.Module? _module;

    internal DiagFisher(PerDatumLogDensity<TBatch> logPosterior, InitialPrecision initPrecision, string[]? subset, nn.Module? module)
    {
        _logPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        _initPrecision = initPrecision;
        _subset = subset;
        _module = module;
    }

    /// <inheritdoc />
    public DiagLaplaceState Init(ParameterTree parameters, long seed = 0) => LaplaceCore.InitDiag(nameof(DiagFisher), parameters, _subset, _initPrecision);

    /// <summary>Adds the batch's squared per-sample gradients to the precision.</summary>
    public DiagLaplaceState Update(DiagLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod(nameof(DiagFisher), state.Method);
        return LaplaceCore.UpdateDiag(state, names =>
        {
            var factors = PerSampleGradients.Factor(_logPosterior, state.Params, batch, names, _module);
            return (factors.SumOfSquares(), factors.Values.mean(), factors.Aux);
        }, inplace);
    }
}
