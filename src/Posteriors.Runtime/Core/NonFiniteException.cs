using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors;

/// <summary>A log posterior or gradient became NaN or infinite; says at which step and in which parameter.</summary>
public sealed class NonFiniteException : ArithmeticException
{
    /// <summary>Creates the exception.</summary>
    public NonFiniteException(string message, long step, string? parameterName) : base(message)
    {
        Step = step;
        ParameterName = parameterName;
    }

    /// <summary>The step counter of the update that produced the value.</summary>
    public long Step { get; }

    /// <summary>The offending parameter, or <c>null</c> when the log posterior itself was not finite.</summary>
    public string? ParameterName { get; }

    /// <summary>
    /// Throws when <paramref name="logPosterior"/> or any leaf of <paramref name="gradient"/> is NaN or infinite.
    /// One fused reduction checks the whole gradient; only on failure are the leaves inspected one by one.
    /// </summary>
    public static void ThrowIfNotFinite(long step, Tensor logPosterior, ParameterTree? gradient = null)
    {
        var value = logPosterior.to_type(ScalarType.Float64).item<double>();
        if (!double.IsFinite(value))
            throw new NonFiniteException(
                $"The log posterior is {value} at step {step}. Lower the learning rate, check the data, or check the model's support.",
                step, null);
        if (gradient is null || gradient.Count == 0) return;
        using var scope = NewDisposeScope();
        // A sum propagates NaN and ±∞; an overflow of finite values only sends us to the exact per-leaf check.
        var total = gradient.SumOf(g => g).to_type(ScalarType.Float64).item<double>();
        if (double.IsFinite(total)) return;
        for (var i = 0; i < gradient.Count; i++)
        {
            if (isfinite(gradient.Leaves[i]).all().item<bool>()) continue;
            throw new NonFiniteException(
                $"The gradient of parameter '{gradient.Names[i]}' has non-finite entries at step {step}.", step, gradient.Names[i]);
        }
    }
}
