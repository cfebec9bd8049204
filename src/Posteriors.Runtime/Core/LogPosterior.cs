using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>
/// The batch-normalised log posterior every algorithm consumes (docs/ALGORITHMS.md §1):
/// log π(θ; batch) = mean over the batch of log p(yᵢ | xᵢ, θ) + log p(θ) / N.
/// </summary>
/// <typeparam name="TBatch">Whatever one mini-batch is: a tensor, a tuple of tensors, a record.</typeparam>
/// <param name="parameters">The parameter values θ at which to evaluate.</param>
/// <param name="batch">One mini-batch of data.</param>
/// <returns>
/// A scalar tensor, differentiable with respect to the tensors of <paramref name="parameters"/> (or with respect
/// to <see cref="LogDensityResult.Wrt"/> when the function evaluates through a module that it bound to the given
/// values), plus optional auxiliary output such as logits.
/// </returns>
/// <remarks>
/// A lambda may return a bare tensor: it converts to a <see cref="LogDensityResult"/> with no auxiliary output.
/// Algorithms never rescale the gradient: temperature acts only where noise or entropy enters.
/// </remarks>
public delegate LogDensityResult LogPosterior<in TBatch>(ParameterTree parameters, TBatch batch);

/// <summary>The value of a <see cref="LogPosterior{TBatch}"/> and what comes with it.</summary>
public readonly struct LogDensityResult
{
    /// <summary>Creates a result.</summary>
    /// <param name="value">A scalar tensor.</param>
    /// <param name="aux">Optional auxiliary output (for example logits), never differentiated.</param>
    /// <param name="wrt">
    /// The leaf tensors the value is differentiable with respect to, when they are not the tensors of the tree the
    /// function was given: a model that binds the given values into a module's own parameters (sharing storage)
    /// returns the module's parameters here, with the same names and shapes as the given tree.
    /// </param>
    /// <param name="analyticGradient">
    /// The gradient, with respect to the parameters, of terms of <paramref name="value"/> that were computed without autograd
    /// (a closed-form prior: <see cref="Modeling.Priors.Gradient"/> / N). Gradient-based algorithms add it to the autograd
    /// gradient of <paramref name="value"/>, so the prior's value and gradient cost one pass and no graph. Algorithms that
    /// need more than the gradient (Hessian–vector products, per-sample gradients) reject a result that has one.
    /// </param>
    public LogDensityResult(Tensor value, Tensor? aux = null, ParameterTree? wrt = null, ParameterTree? analyticGradient = null)
    {
        Value = value ?? throw new ArgumentNullException(nameof(value));
        Aux = aux;
        Wrt = wrt;
        AnalyticGradient = analyticGradient;
    }

    /// <summary>The log posterior, a scalar tensor.</summary>
    public Tensor Value { get; }

    /// <summary>Auxiliary output, or <c>null</c>.</summary>
    public Tensor? Aux { get; }

    /// <summary>Leaves to differentiate with respect to, or <c>null</c> for the given parameters themselves.</summary>
    public ParameterTree? Wrt { get; }

    /// <summary>The gradient of the terms of <see cref="Value"/> that autograd does not see, or <c>null</c>.</summary>
    public ParameterTree? AnalyticGradient { get; }

    /// <summary>This result, for a computation that differentiates <see cref="Value"/> itself.</summary>
    /// <exception cref="NotSupportedException">Part of the gradient is in <see cref="AnalyticGradient"/>, which that computation would lose.</exception>
    internal LogDensityResult Differentiable(string computation) => AnalyticGradient is null ? this : throw new NotSupportedException(
        $"{computation} differentiates the log density itself, but this one returns part of its gradient in closed form " +
        "(LogDensityResult.AnalyticGradient), which only first-order algorithms can use. Use a log density that computes every term with autograd.");

    /// <summary>A result with no auxiliary output.</summary>
    public static implicit operator LogDensityResult(Tensor value) => new(value);

    /// <summary>A result with auxiliary output.</summary>
    public static implicit operator LogDensityResult((Tensor Value, Tensor? Aux) pair) => new(pair.Value, pair.Aux);
}
