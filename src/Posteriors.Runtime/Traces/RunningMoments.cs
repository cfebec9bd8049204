using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Traces;

/// <summary>
/// Running mean and covariance (or only the diagonal variance, for large models) of flattened samples, merged batch
/// by batch with Chan et al.'s parallel update, accumulated in float64 on the samples' device.
/// </summary>
public sealed class RunningMoments : IDisposable
{
    private Tensor? _mean, _m2;

    /// <summary>Creates empty moments.</summary>
    /// <param name="fullCovariance">Keep the D×D covariance (else only the D variances).</param>
    public RunningMoments(bool fullCovariance = false) => FullCovariance = fullCovariance;

    /// <summary>Whether the full covariance is kept.</summary>
    public bool FullCovariance { get; }

    /// <summary>Number of samples added.</summary>
    public long Count { get; private set; }

    /// <summary>Adds one sample: the tree flattened in its order (leaves of any dtype).</summary>
    public void Add(ParameterTree sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        using var scope = NewDisposeScope();
        AddRows(cat(sample.Leaves.Select(t => t.detach().reshape(1, -1).to_type(ScalarType.Float64)).ToArray(), 1));
    }

    /// <summary>Adds the rows of an [n, D] matrix as n samples (e.g. <c>ParallelChains.Rows</c> of K chains).</summary>
    /// <exception cref="ArgumentException">Not a matrix, or D differs from earlier samples.</exception>
    public void AddRows(Tensor rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.dim() != 2) throw new ArgumentException($"Expected an [n, D] matrix, got {rows.dim()} dimensions.", nameof(rows));
        if (_mean is not null && rows.shape[1] != _mean.shape[0])
            throw new ArgumentException($"Samples have {rows.shape[1]} elements but earlier ones had {_mean.shape[0]}.", nameof(rows));
        var n = rows.shape[0];
        if (n == 0) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = rows.detach().to_type(ScalarType.Float64);
        var batchMean = x.mean(new long[] { 0 });
        var centred = x - batchMean;
        var batchM2 = FullCovariance ? Checked.MatMul(centred.t(), centred) : centred.square().sum(dim: 0);
        if (_mean is null)
        {
            _mean = batchMean.DetachFromDisposeScope();
            _m2 = batchM2.DetachFromDisposeScope();
            Count = n;
            return;
        }
        var total = Count + n;
        var delta = batchMean - _mean;
        var cross = FullCovariance ? delta.outer(delta) : delta.square();
        _m2!.add_(batchM2).add_(cross, alpha: (double)Count * n / total);
        _mean.add_(delta, alpha: (double)n / total);
        Count = total;
    }

    /// <summary>The mean (D values, float64).</summary>
    /// <exception cref="InvalidOperationException">No sample yet.</exception>
    public Tensor Mean => (_mean ?? throw new InvalidOperationException("No sample has been added.")).clone();

    /// <summary>The unbiased variances (D values, float64).</summary>
    public Tensor Variance
    {
        get
        {
            EnsureTwo();
            return (FullCovariance ? _m2!.diagonal() : _m2!) / (Count - 1.0);
        }
    }

    /// <summary>The unbiased D×D covariance (float64).</summary>
    /// <exception cref="InvalidOperationException">Only the diagonal is kept, or fewer than two samples.</exception>
    public Tensor Covariance
    {
        get
        {
            if (!FullCovariance) throw new InvalidOperationException("These moments keep only the diagonal; create them with fullCovariance: true.");
            EnsureTwo();
            return _m2! / (Count - 1.0);
        }
    }

    private void EnsureTwo()
    {
        if (Count < 2) throw new InvalidOperationException($"A variance needs at least two samples; there are {Count}.");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _mean?.Dispose();
        _m2?.Dispose();
        _mean = _m2 = null;
    }
}
