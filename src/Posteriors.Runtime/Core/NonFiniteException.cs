using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Posteriors.Trees;
using TorchSharp;
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
    /// Contiguous CPU float32/float64 leaves are checked in place over their storage; otherwise one fused reduction checks
    /// the whole gradient. Only on failure are the leaves inspected one by one.
    /// </summary>
    public static void ThrowIfNotFinite(long step, Tensor logPosterior, ParameterTree? gradient = null)
    {
        var value = Scalar(logPosterior);
        if (!double.IsFinite(value))
            throw new NonFiniteException(
                $"The log posterior is {value} at step {step}. Lower the learning rate, check the data, or check the model's support.",
                step, null);
        if (gradient is null || gradient.Count == 0) return;
        if (gradient.Leaves.All(IsHostFloat))
        {
            if (gradient.Leaves.All(AllFinite)) return;
        }
        else
        {
            using var scope = NewDisposeScope();
            // A sum propagates NaN and ±∞; an overflow of finite values only sends us to the exact per-leaf check.
            var total = gradient.SumOf(g => g).to_type(ScalarType.Float64).item<double>();
            if (double.IsFinite(total)) return;
        }
        for (var i = 0; i < gradient.Count; i++)
        {
            if (isfinite(gradient.Leaves[i]).all().item<bool>()) continue;
            throw new NonFiniteException(
                $"The gradient of parameter '{gradient.Names[i]}' has non-finite entries at step {step}.", step, gradient.Names[i]);
        }
    }

    /// <summary>The value of a one-element tensor; a CPU float is read from its storage (item() is a libtorch dispatch, a
    /// microsecond a step that a small model notices).</summary>
    private static double Scalar(Tensor t)
    {
        if (IsHostFloat(t) && t.numel() == 1)
            return t.dtype == ScalarType.Float32 ? MemoryMarshal.Cast<byte, float>(t.bytes)[0] : MemoryMarshal.Cast<byte, double>(t.bytes)[0];
        return t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float64 ? t.item<double>() : t.to_type(ScalarType.Float64).item<double>();
    }

    private static bool IsHostFloat(Tensor t) =>
        t.dtype is ScalarType.Float32 or ScalarType.Float64 && t.device_type == DeviceType.CPU && t.is_contiguous() && t.numel() * t.element_size() <= int.MaxValue;

    /// <summary>x · 0 is 0 for finite x and NaN for NaN and ±∞, so a sum of them is 0 exactly when every element is finite.</summary>
    private static bool AllFinite(Tensor t) => t.dtype == ScalarType.Float64
        ? AllFinite(MemoryMarshal.Cast<byte, double>(t.bytes))
        : AllFinite(MemoryMarshal.Cast<byte, float>(t.bytes));

    private static bool AllFinite<T>(ReadOnlySpan<T> values) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var acc = Vector512<T>.Zero;
        var i = 0;
        for (; i <= values.Length - Vector512<T>.Count; i += Vector512<T>.Count) acc += Vector512.Create(values[i..]) * T.Zero;
        var rest = T.Zero;
        for (; i < values.Length; i++) rest += values[i] * T.Zero;
        return T.IsFinite(Vector512.Sum(acc) + rest);
    }
}
