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
    public LogDensityResult(Tensor value, Tensor? aux = null, ParameterTree? wrt = null)
    {
        Value = value ?? throw new ArgumentNullException(nameof(value));
        Aux = aux;
        Wrt = wrt;
    }

    /// <summary>The log posterior, a scalar tensor.</summary>
    public Tensor Value { get; }

    /// <summary>Auxiliary output, or <c>null</c>.</summary>
    public Tensor? Aux { get; }

    /// <summary>Leaves to differentiate with respect to, or <c>null</c> for the given parameters themselves.</summary>
    public ParameterTree? Wrt { get; }

    /// <summary>A result with no auxiliary output.</summary>
    public static implicit operator LogDensityResult(Tensor value) => new(value);

    /// <summary>A result with auxiliary output.</summary>
    public static implicit operator LogDensityResult((Tensor Value, Tensor? Aux) pair) => new(pair.Value, pair.Aux);
}
