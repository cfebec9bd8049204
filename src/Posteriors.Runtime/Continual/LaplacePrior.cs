using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Continual;

/// <summary>
/// Laplace-as-prior for continual learning: the previous episode's diagonal Gaussian posterior (mean μ, precision P)
/// becomes the next episode's prior with its precision scaled by λ,
/// log p(θ) = −½ λ Σ P (θ − μ)² (unnormalised: the constant does not depend on θ).
/// λ = 0 is a flat prior (plain fine-tuning), λ = 1 the exact sequential Bayesian update under the diagonal
/// approximation, λ &gt; 1 a stronger pull towards earlier tasks (as in EWC).
/// </summary>
public sealed class LaplacePrior : IPersistentState<LaplacePrior>
{
    /// <summary>Creates the prior.</summary>
    /// <param name="mean">μ, the previous posterior's mean (copied).</param>
    /// <param name="precision">P, the previous posterior's diagonal precision, same structure as <paramref name="mean"/>, non-negative (copied).</param>
    /// <param name="lambda">λ ≥ 0, the scale of the precision.</param>
    /// <exception cref="ArgumentException">The trees differ in structure, or a precision entry is negative or not finite.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lambda"/> is negative or not finite.</exception>
    public LaplacePrior(ParameterTree mean, ParameterTree precision, double lambda)
    {
        ArgumentNullException.ThrowIfNull(mean);
        mean.EnsureSameStructure(precision, nameof(precision));
        Lambda = Check.NonNegative(lambda, nameof(lambda));
        for (var i = 0; i < precision.Count; i++)
        {
            using var scope = NewDisposeScope();
            var leaf = precision.Leaves[i];
            if (!(isfinite(leaf).all().item<bool>() && (leaf >= 0).all().item<bool>()))
                throw new ArgumentException($"The precision of parameter '{precision.Names[i]}' has negative or non-finite entries.", nameof(precision));
        }
        Mean = mean.Clone();
        Precision = precision.Clone();
    }

    /// <summary>μ.</summary>
    public ParameterTree Mean { get; }

    /// <summary>P (before scaling by λ).</summary>
    public ParameterTree Precision { get; }

    /// <summary>λ.</summary>
    public double Lambda { get; }

    /// <summary>The prior's own precision tree λ·P (e.g. as the initial precision of the next Laplace fit).</summary>
    public ParameterTree ScaledPrecision() => Precision.Map(p => p * Lambda);

    /// <summary>−½ λ Σ P (θ − μ)², a scalar differentiable in <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="parameters"/> differs in structure from the mean.</exception>
    public Tensor LogProb(ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Mean.EnsureSameStructure(parameters, nameof(parameters));
        Tensor? total = null;
        for (var i = 0; i < parameters.Count; i++)
        {
            var x = parameters.Leaves[i];
            var term = (Precision.Leaves[i].to(x.dtype, x.device) * (x - Mean.Leaves[i].to(x.dtype, x.device)).square()).sum();
            total = total is null ? term : total + term;
        }
        return total is null ? zeros(Array.Empty<long>(), dtype: parameters.ScalarType, device: parameters.Device) : total * (-0.5 * Lambda);
    }

    /// <summary>The same prior with λ replaced.</summary>
    public LaplacePrior WithLambda(double lambda) => new(Mean, Precision, lambda);

    /// <inheritdoc />
    public static string Kind => "LaplacePrior";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Set("mean", Mean);
        record.Set("precision", Precision);
        record.Set("lambda", Lambda);
    }

    /// <inheritdoc />
    public static LaplacePrior ReadFrom(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return new LaplacePrior(record.GetTree("mean"), record.GetTree("precision"), record.GetDouble("lambda"));
    }
}
