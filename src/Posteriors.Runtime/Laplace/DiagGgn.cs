using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a diagonal generalised Gauss–Newton precision (docs/ALGORITHMS.md §4): each batch adds
/// diag(Σᵢ Jᵢᵀ Hᵢ Jᵢ), Jᵢ the Jacobian of the model's outputs and Hᵢ the negative Hessian of the outer
/// log-likelihood. Only the likelihood enters; the prior is the initial precision.
/// </summary>
public static class DiagGgn
{
    /// <summary>Builds the transform.</summary>
    /// <param name="model">The forward pass and its outer likelihood (<see cref="ForwardModel{TBatch}"/> or a generated model).</param>
    /// <param name="initPrecision">The prior precision: a scalar (default 0) or a tree over the selected parameters.</param>
    /// <param name="subset">Names of the parameters to approximate (null: all); the others stay fixed at the mode.</param>
    /// <param name="module">The module the forward evaluates through, if any (nn.Linear fast path).</param>
    public static DiagGgn<TBatch> Build<TBatch>(IForwardModel<TBatch> model, InitialPrecision? initPrecision = null,
        IEnumerable<string>? subset = null, nn.Module? module = null) =>
        new(model, initPrecision ?? 0.0, subset?.ToArray(), module);

    /// <summary>Draws from the approximation; see <see cref="DiagLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(DiagLaplaceState state, long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature, minPrecision);

    /// <summary>
    /// The mean outer log-likelihood of a batch at the mode (what the state reports as its log density) and the model's
    /// outputs there (its auxiliary output).
    /// </summary>
    internal static (Tensor Value, Tensor Outputs) MeanLogLikelihood<TBatch>(IForwardModel<TBatch> model, ParameterTree parameters, TBatch batch)
    {
        using var _ = no_grad();
        var outputs = model.Forward(parameters, batch).Outputs.detach();
        return (model.Likelihood.LogProb(outputs, model.Targets(batch)).mean().detach(), outputs);
    }

    /// <summary>A curvature increment with the value and outputs of <see cref="MeanLogLikelihood{TBatch}"/>.</summary>
    internal static (TIncrement Increment, Tensor Value, Tensor? Aux) Curvature<TIncrement>(TIncrement increment, (Tensor Value, Tensor Outputs) evaluation) =>
        (increment, evaluation.Value, evaluation.Outputs);
}

/// <summary>The diagonal GGN Laplace transform. See <see cref="DiagGgn"/>.</summary>
public sealed class DiagGgn<TBatch> : ITransform<DiagLaplaceState, TBatch>
{
    private readonly IForwardModel<TBatch> _model;
    private readonly InitialPrecision _initPrecision;
    private readonly string[]? _subset;
    private readonly nn.Module? _module;

    internal DiagGgn(IForwardModel<TBatch> model, InitialPrecision initPrecision, string[]? subset, nn.Module? module)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _initPrecision = initPrecision;
        _subset = subset;
        _module = module;
    }

    /// <inheritdoc />
    public DiagLaplaceState Init(ParameterTree parameters, long seed = 0) => LaplaceCore.InitDiag(nameof(DiagGgn), parameters, _subset, _initPrecision);

    /// <summary>Adds the batch's diagonal GGN to the precision.</summary>
    public DiagLaplaceState Update(DiagLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod(nameof(DiagGgn), state.Method);
        return LaplaceCore.UpdateDiag(state, names =>
            DiagGgn.Curvature(Ggn.Diagonal(_model, state.Params, batch, names, _module), DiagGgn.MeanLogLikelihood(_model, state.Params, batch)), inplace);
    }
}
