using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// What the source generator implements for a <see cref="ModelAttribute"/> class: the batch-normalised log posterior
/// (docs/ALGORITHMS.md §1), the log prior, the parameter tree and its initialisation.
/// </summary>
/// <typeparam name="TBatch">One mini-batch: a tuple of the likelihood method's parameters (or its single parameter).</typeparam>
/// <remarks>
/// Tree leaves appear in declaration order; a module member contributes its <c>named_parameters()</c> under the
/// member's name (<c>Fc1.weight</c>); a <see cref="PositiveAttribute"/> member appears as <c>log_Name</c> holding log θ.
/// Evaluating at a tree does not copy the model: tensor members are rebound for the call, module members are pointed
/// at the tree's storage (<see cref="ModuleBinding.Bind"/>), which they keep afterwards.
/// </remarks>
public interface IModel<in TBatch>
{
    /// <summary>N, the number of data points; must be set (positive) before evaluating the log posterior.</summary>
    long DatasetSize { get; set; }

    /// <summary>The names of the tree's leaves, in order.</summary>
    IReadOnlyList<string> ParameterNames { get; }

    /// <summary>
    /// The members' current values as a new tree (copies, in the unconstrained coordinates). Before any evaluation
    /// these are the declared initial values.
    /// </summary>
    ParameterTree InitialParameters();

    /// <summary>A draw from the prior (unconstrained coordinates); Flat-prior leaves keep their current values.</summary>
    ParameterTree SamplePrior(Generator? generator = null);

    /// <summary>log p(θ) summed over every parameter, with the Jacobian terms of positive parameters (not divided by N).</summary>
    Tensor LogPrior(ParameterTree parameters);

    /// <summary>The per-datum log likelihoods log p(yᵢ | xᵢ, θ), shape [B].</summary>
    Tensor LogLikelihoods(ParameterTree parameters, TBatch batch);

    /// <summary>
    /// mean over the batch of log p(yᵢ | xᵢ, θ) + log p(θ) / N, as a <see cref="LogPosterior{TBatch}"/>
    /// (pass <c>model.LogPosterior</c> to any algorithm).
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="DatasetSize"/> is not set.</exception>
    LogDensityResult LogPosterior(ParameterTree parameters, TBatch batch);

    /// <summary>
    /// ∇ <see cref="LogPrior"/> in closed form, without autograd: every prior's derivatives with respect to its parameter
    /// and to the parameters its arguments name, pulled back through the constraints (Jacobian terms included).
    /// </summary>
    ParameterTree LogPriorGradient(ParameterTree parameters);

    /// <summary>
    /// The log posterior for first-order algorithms (SGLD, SGHMC, BAOA, MAP, optimizers): the value of
    /// <see cref="LogPosterior"/>, with the prior evaluated without autograd and its gradient
    /// (<see cref="LogPriorGradient"/> / N) returned as <see cref="LogDensityResult.AnalyticGradient"/>, which
    /// <see cref="Autodiff.ValueAndGrad{TBatch}"/> adds to the likelihood's autograd gradient. Computations that
    /// differentiate the value itself (Laplace, VI, <see cref="Ensembles.ParallelChains.Sum{TBatch}"/>) reject it: give
    /// those <see cref="LogPosterior"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="DatasetSize"/> is not set.</exception>
    LogDensityResult FirstOrderLogPosterior(ParameterTree parameters, TBatch batch);

    /// <summary>The parameters in the model's own coordinates: positive leaves exponentiated and named by their member.</summary>
    ParameterTree Constrain(ParameterTree parameters);
}

/// <summary>
/// A model declared with a <see cref="ForwardAttribute"/> method: the model output and the outer likelihood are
/// available separately, as the curvature code's <see cref="Curvature.IForwardModel{TBatch}"/> (GGN Laplace,
/// linearised predictives) on batches (X, Y).
/// </summary>
public interface IForwardModel : IModel<(Tensor X, Tensor Y)>, Curvature.IForwardModel<(Tensor X, Tensor Y)>
{
    /// <summary>f(x; θ) at the given parameters (for example logits) for predictions.</summary>
    Tensor Forward(ParameterTree parameters, Tensor x);
}

/// <summary>
/// A model that can simulate data from given parameters, for simulation-based calibration
/// (<see cref="Diagnostics.SimulationBasedCalibration"/>): write <c>Simulate</c> in the [Model] class and add this interface.
/// </summary>
/// <typeparam name="TBatch">The model's batch type.</typeparam>
public interface ISimulator<out TBatch>
{
    /// <summary>A data set drawn from the likelihood at <paramref name="parameters"/> (constrained: named by member).</summary>
    TBatch Simulate(ParameterTree parameters, Generator generator);
}
