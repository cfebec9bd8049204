using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>A log posterior's value, auxiliary output and gradient at one point.</summary>
/// <param name="Value">log π(θ; batch), a detached scalar tensor.</param>
/// <param name="Aux">The auxiliary output, detached, or <c>null</c>.</param>
/// <param name="Gradient">∇θ log π (ascent direction), a detached tree shaped like θ.</param>
public sealed record ValueAndGradient(Tensor Value, Tensor? Aux, ParameterTree Gradient);

/// <summary>Gradients of log posteriors: one forward and one backward pass per call.</summary>
public static class Autodiff
{
    /// <summary>
    /// Evaluates <paramref name="logPosterior"/> at <paramref name="parameters"/> with autograd recording, and returns
    /// the result with the leaves to differentiate with respect to (fresh leaves sharing the storage of
    /// <paramref name="parameters"/>, or the result's <see cref="LogDensityResult.Wrt"/>). Curvature utilities that need
    /// more than one gradient (per-sample gradients, Hessian–vector products) start here.
    /// </summary>
    /// <exception cref="InvalidOperationException">The value is not a scalar, or <c>Wrt</c> does not match the parameters.</exception>
    /// <exception cref="NotSupportedException">The result carries an <see cref="LogDensityResult.AnalyticGradient"/>: only <see cref="ValueAndGrad{TBatch}"/> can fold it in.</exception>
    public static (LogDensityResult Result, ParameterTree Wrt) Evaluate<TBatch>(
        LogPosterior<TBatch> logPosterior, ParameterTree parameters, TBatch batch) => Evaluate(logPosterior, parameters, batch, analyticGradient: false);

    private static (LogDensityResult Result, ParameterTree Wrt) Evaluate<TBatch>(
        LogPosterior<TBatch> logPosterior, ParameterTree parameters, TBatch batch, bool analyticGradient)
    {
        ArgumentNullException.ThrowIfNull(logPosterior);
        ArgumentNullException.ThrowIfNull(parameters);
        using var _ = enable_grad();
        var leaves = parameters.Map(t => t.detach().requires_grad_(true));
        var result = logPosterior(leaves, batch);
        if (result.Value is null || result.Value.numel() != 1)
            throw new InvalidOperationException(
                $"The log posterior must return a scalar; it returned shape {ParameterTree.Shape(result.Value!)}. " +
                "Average the per-datum log likelihoods over the batch (docs/ALGORITHMS.md §1).");
        var wrt = result.Wrt ?? leaves;
        if (result.Wrt is not null) parameters.EnsureSameStructure(result.Wrt, nameof(LogDensityResult.Wrt));
        if (result.AnalyticGradient is not null)
        {
            if (!analyticGradient) result.Differentiable("This computation");
            parameters.EnsureSameStructure(result.AnalyticGradient, nameof(LogDensityResult.AnalyticGradient));
        }
        return (result, wrt);
    }

    /// <summary>
    /// log π(θ; batch) and ∇θ log π in one backward pass. Parameters the value does not depend on get a zero gradient.
    /// A <see cref="LogDensityResult.AnalyticGradient"/> is added to the autograd gradient.
    /// </summary>
    public static ValueAndGradient ValueAndGrad<TBatch>(LogPosterior<TBatch> logPosterior, ParameterTree parameters, TBatch batch)
    {
        var (result, wrt) = Evaluate(logPosterior, parameters, batch, analyticGradient: true);
        // A 0-dimensional value (the usual sum or mean) is used as it is: a reshape would add a node to the graph and a
        // pass through it to the backward.
        var value = result.Value.dim() == 0 ? result.Value : result.Value.reshape(Array.Empty<long>());
        var grads = value.requires_grad
            ? autograd.grad(new[] { value }, wrt.Leaves.ToArray(), allow_unused: true).ToArray()
            : new Tensor[wrt.Count];
        for (var i = 0; i < grads.Length; i++)
            grads[i] = grads[i] is null || grads[i].IsInvalid ? zeros_like(wrt.Leaves[i]) : grads[i].requires_grad ? grads[i].detach() : grads[i];
        if (result.AnalyticGradient is { } analytic)
            using (no_grad())
                for (var i = 0; i < grads.Length; i++)
                    // In place where the buffer is dense (autograd may hand back an expanded, stride-0 tensor).
                    grads[i] = grads[i].is_contiguous() ? grads[i].add_(analytic.Leaves[i]) : grads[i].add(analytic.Leaves[i]);
        var gradient = new ParameterTree(wrt.Names.Select((name, i) => new KeyValuePair<string, Tensor>(name, grads[i])));
        return new ValueAndGradient(value.detach(), result.Aux?.detach(), gradient);
    }
}
