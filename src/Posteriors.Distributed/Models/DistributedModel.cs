using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Models;

/// <summary>
/// A model as grains use it: the batch-normalised log posterior, the members' initialisations, the training data and
/// the mini-batch stream. A silo builds one from a <see cref="ModelSpec"/> through its <see cref="ModelCatalog"/>, once
/// per grain (a module bound to a chain's parameters must not be shared between grains stepping concurrently).
/// </summary>
public abstract class DistributedModel : IDisposable
{
    /// <summary>The batch-normalised log posterior over (inputs, labels) batches.</summary>
    public abstract LogPosterior<(Tensor X, Tensor Y)> LogPosterior { get; }

    /// <summary>Training inputs, [N, …].</summary>
    public abstract Tensor TrainX { get; }

    /// <summary>Training targets, [N, …].</summary>
    public abstract Tensor TrainY { get; }

    /// <summary>Test inputs for predictions, or null when the model has none.</summary>
    public virtual Tensor? TestX => null;

    /// <summary>Test labels, or null when the model has none.</summary>
    public virtual Tensor? TestY => null;

    /// <summary>
    /// The likelihood as outputs and an output likelihood (no prior), for Fisher and GGN curvature; null when the model
    /// offers none.
    /// </summary>
    public virtual IForwardModel<(Tensor X, Tensor Y)>? ForwardModel => null;

    /// <summary>The module the model evaluates through (its linear layers get per-sample gradients in one pass), if any.</summary>
    public virtual nn.Module? Module => null;

    /// <summary>The prior's precision 1/σ² (an isotropic Gaussian prior), added once to the summed curvature.</summary>
    public virtual double PriorPrecision => 0.0;

    /// <summary>The mini-batch size.</summary>
    public abstract int BatchSize { get; }

    /// <summary>N.</summary>
    public long DataSize => TrainX.shape[0];

    /// <summary>Steps per epoch: the last incomplete batch of an epoch is dropped.</summary>
    public long StepsPerEpoch => DataSize / BatchSize;

    /// <summary>The initial parameters of member <paramref name="member"/> of a run seeded with <paramref name="seed"/>.</summary>
    public abstract ParameterTree InitialParameters(long seed, int member);

    /// <summary>Log predictive probabilities [B, C] at <paramref name="parameters"/>, without autograd.</summary>
    public abstract Tensor LogProbabilities(ParameterTree parameters, Tensor x);

    private long _epoch = -1, _epochSeed;
    private Tensor? _order;

    /// <summary>
    /// The training-set indices of mini-batch <paramref name="step"/> of a run seeded with <paramref name="seed"/>: a
    /// function of (seed, step) alone, shared by all members (as in the single-process ensemble), so a member
    /// resumed on another silo sees the same batches. The default draws epoch e's permutation from the counter-based
    /// stream (seed, e); a model may override it to reproduce another program's order.
    /// </summary>
    public virtual Tensor BatchIndices(long seed, long step)
    {
        var epoch = step / StepsPerEpoch;
        if (_order is null || epoch != _epoch || seed != _epochSeed)
        {
            _order?.Dispose();
            var generator = new Generator((ulong)Rng.Mix(seed, epoch, stream: 1));
            _order = randperm(DataSize, generator: generator).DetachFromDisposeScope();
            (_epoch, _epochSeed) = (epoch, seed);
        }
        return _order.narrow(0, step % StepsPerEpoch * BatchSize, BatchSize);
    }

    /// <summary>Mini-batch <paramref name="step"/> of the run seeded with <paramref name="seed"/> (tensors in the caller's scope).</summary>
    public (Tensor X, Tensor Y) Batch(long seed, long step)
    {
        using var scope = NewDisposeScope();
        var idx = BatchIndices(seed, step).to(TrainX.device);
        return (TrainX.index_select(0, idx).MoveToOuterDisposeScope(), TrainY.index_select(0, idx).MoveToOuterDisposeScope());
    }

    /// <summary>Frees the model's tensors.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the model's tensors; overrides call the base.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) _order?.Dispose();
    }
}
