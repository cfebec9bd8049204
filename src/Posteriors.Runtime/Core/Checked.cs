using static TorchSharp.torch;

namespace Posteriors;

/// <summary>
/// Tensor operations whose native TorchSharp entry point lets a libtorch error escape: there the error does not become
/// a .NET exception but ends the process (<c>terminate called after throwing an instance of 'c10::Error'</c>, exit
/// code 134), and no <c>catch</c> can stop it. These wrappers check their arguments first and throw an
/// <see cref="ArgumentException"/> that names the operation and the shapes.
/// </summary>
/// <remarks>
/// TorchSharp 0.107.0's <c>THSTensor_matmul</c> calls <c>at::matmul</c> without the try/catch its neighbours
/// (<c>mm</c>, <c>bmm</c>, <c>mv</c>, <c>einsum</c>, <c>linear</c>) have, so every <c>Tensor.matmul</c> and
/// <c>torch.matmul</c> with mismatched shapes, dtypes or devices aborts. Use <see cref="MatMul"/> instead.
/// </remarks>
public static class Checked
{
    /// <summary>
    /// <c>a.matmul(b)</c> with PyTorch's rules (dot product, matrix–vector, matrix–matrix and broadcast batched
    /// products), checked before the native call.
    /// </summary>
    /// <exception cref="ArgumentNullException">An operand is null.</exception>
    /// <exception cref="ArgumentException">
    /// An operand is a scalar, the contracted dimensions differ, the batch dimensions do not broadcast, or the
    /// operands' dtypes or devices differ.
    /// </exception>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var (sa, sb) = (a.shape, b.shape);
        string Shapes() => $"matmul of shapes {Format(sa)} and {Format(sb)}";
        if (sa.Length == 0 || sb.Length == 0)
            throw new ArgumentException($"{Shapes()}: both operands need at least one dimension.", sa.Length == 0 ? nameof(a) : nameof(b));
        if (a.dtype != b.dtype)
            throw new ArgumentException($"{Shapes()}: the dtypes differ ({a.dtype} and {b.dtype}).", nameof(b));
        if (a.device.type != b.device.type || a.device.index != b.device.index)
            throw new ArgumentException($"{Shapes()}: the devices differ ({a.device} and {b.device}).", nameof(b));

        // The contracted dimension: a's last against b's only (b 1-D) or second-to-last.
        var inner = sb.Length == 1 ? sb[0] : sb[^2];
        if (sa[^1] != inner)
            throw new ArgumentException(
                $"{Shapes()}: the last dimension of the first ({sa[^1]}) must equal the {(sb.Length == 1 ? "length" : "second-to-last dimension")} of the second ({inner}).",
                nameof(b));

        // Batch dimensions (all but the matrix dimensions; a 1-D operand has none) must broadcast.
        var batchA = sa.Length > 2 ? sa[..^2] : Array.Empty<long>();
        var batchB = sb.Length > 2 ? sb[..^2] : Array.Empty<long>();
        for (var i = 1; i <= Math.Min(batchA.Length, batchB.Length); i++)
        {
            long x = batchA[^i], y = batchB[^i];
            if (x != y && x != 1 && y != 1)
                throw new ArgumentException($"{Shapes()}: the batch dimensions {Format(batchA)} and {Format(batchB)} do not broadcast.", nameof(b));
        }
        return a.matmul(b);
    }

    private static string Format(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
