using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// One argument of a prior (a location, a scale, a rate, ...): a constant, or a tensor such as another parameter's
/// value (hierarchical priors) or a per-element hyperparameter. Tensors broadcast against the parameter.
/// </summary>
public readonly struct PriorArgument
{
    private PriorArgument(double value, Tensor? tensor) => (Value, Tensor, IsSet) = (value, tensor, true);

    /// <summary>The constant value (when <see cref="Tensor"/> is null).</summary>
    public double Value { get; }

    /// <summary>The tensor value, or null for a constant.</summary>
    public Tensor? Tensor { get; }

    /// <summary>Whether the argument was given (a default instance stands for "not given").</summary>
    public bool IsSet { get; }

    /// <summary>A constant argument.</summary>
    public static implicit operator PriorArgument(double value) => new(value, null);

    /// <summary>A tensor argument.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    public static implicit operator PriorArgument(Tensor value) => new(0, value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>The argument as a tensor of <paramref name="like"/>'s dtype and device.</summary>
    internal Tensor AsTensor(Tensor like) =>
        Tensor is { } t ? (t.dtype == like.dtype && t.device == like.device ? t : t.to(like.dtype, like.device))
                        : tensor(Value, dtype: like.dtype, device: like.device);

    /// <inheritdoc />
    public override string ToString() => !IsSet ? "(not set)" : Tensor is { } t ? "tensor " + Trees.ParameterTree.Shape(t) : Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
