using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// Lower-triangular matrices stored packed: the D(D+1)/2 entries on and below the diagonal, row by row
/// (L₀₀, L₁₀, L₁₁, L₂₀, …), the layout dense VI keeps its Cholesky factor in.
/// </summary>
public static class LowerTriangular
{
    /// <summary>The packed length D(D+1)/2 of a D×D lower-triangular matrix.</summary>
    public static long PackedLength(long dimension) => dimension * (dimension + 1) / 2;

    /// <summary>The dimension D whose packed length is <paramref name="packedLength"/>.</summary>
    /// <exception cref="ArgumentException">The length is not triangular.</exception>
    public static long Dimension(long packedLength)
    {
        var d = (long)Math.Round((Math.Sqrt(8.0 * packedLength + 1) - 1) / 2);
        if (d < 0 || PackedLength(d) != packedLength)
            throw new ArgumentException($"A packed lower-triangular vector cannot have length {packedLength} (it must be D(D+1)/2).", nameof(packedLength));
        return d;
    }

    /// <summary>Packs the lower triangle of the last two dimensions of <paramref name="matrix"/> ([…, D, D] → […, D(D+1)/2]).</summary>
    /// <exception cref="ArgumentException">The last two dimensions are not square.</exception>
    public static Tensor Pack(Tensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.dim() < 2 || matrix.shape[^1] != matrix.shape[^2])
            throw new ArgumentException($"Expected a square matrix, got shape [{string.Join(", ", matrix.shape)}].", nameof(matrix));
        var d = matrix.shape[^1];
        var idx = tril_indices(d, d, device: matrix.device);
        return matrix.index(TensorIndex.Ellipsis, TensorIndex.Tensor(idx[0]), TensorIndex.Tensor(idx[1]));
    }

    /// <summary>Unpacks […, D(D+1)/2] into […, D, D] lower-triangular matrices (zeros above the diagonal).</summary>
    /// <exception cref="ArgumentException">The last dimension is not a triangular number.</exception>
    public static Tensor Unpack(Tensor packed)
    {
        ArgumentNullException.ThrowIfNull(packed);
        if (packed.dim() < 1) throw new ArgumentException("Expected at least one dimension.", nameof(packed));
        var d = Dimension(packed.shape[^1]);
        var shape = packed.shape[..^1].Concat(new[] { d, d }).ToArray();
        var result = zeros(shape, dtype: packed.dtype, device: packed.device);
        var idx = tril_indices(d, d, device: packed.device);
        return result.index_put_(packed, TensorIndex.Ellipsis, TensorIndex.Tensor(idx[0]), TensorIndex.Tensor(idx[1]));
    }
}
