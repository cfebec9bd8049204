using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Traces;

/// <summary>Posterior-predictive averages over collected samples or ensemble members.</summary>
public static class Predictive
{
    /// <summary>The mean of <paramref name="predict"/>(θ) over the samples (e.g. class probabilities, regression means).</summary>
    /// <exception cref="ArgumentException">No samples.</exception>
    public static Tensor Average(IEnumerable<ParameterTree> samples, Func<ParameterTree, Tensor> predict)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(predict);
        Tensor? sum = null;
        long n = 0;
        using (no_grad())
        {
            foreach (var theta in samples)
            {
                using var scope = NewDisposeScope();
                var p = predict(theta).detach();
                if (sum is null) sum = p.clone().DetachFromDisposeScope();
                else sum.add_(p);
                n++;
            }
        }
        if (sum is null) throw new ArgumentException("There are no samples to average over.", nameof(samples));
        return sum.div_(n);
    }

    /// <summary>The Bayesian model average of class probabilities: mean over samples of softmax(<paramref name="logits"/>(θ)) on the last dimension.</summary>
    public static Tensor AverageProbabilities(IEnumerable<ParameterTree> samples, Func<ParameterTree, Tensor> logits)
    {
        ArgumentNullException.ThrowIfNull(logits);
        return Average(samples, theta => logits(theta).softmax(-1));
    }
}
