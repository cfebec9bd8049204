using static TorchSharp.torch;

namespace Posteriors.Distributed.Chains;

/// <summary>
/// One chain or ensemble member, keyed by <see cref="ChainSpec.Key"/>. It steps its member on the run's mini-batch
/// stream, writes its state (<see cref="Serialization.StateFile"/> bytes) to grain storage every C steps, and after its
/// silo dies reactivates elsewhere from the last checkpoint: the noise and batches of a step depend only on (seed,
/// member, step), so the recomputed steps are the same numbers.
/// </summary>
public interface IChainGrain : IGrainWithStringKey
{
    /// <summary>
    /// Sets the member up at step 0 (and checkpoints it), or, when it already exists with the same spec (a restarted
    /// coordinator, <c>--resume</c>), leaves it where it is.
    /// </summary>
    /// <exception cref="InvalidOperationException">The member exists with a different spec.</exception>
    Task<ChainProgress> Start(ChainSpec spec);

    /// <summary>Steps until <paramref name="untilStep"/> (capped at the spec's total) and reports where the member stands.</summary>
    /// <exception cref="CheckpointException">Grain storage refused a checkpoint; the previous one is intact.</exception>
    Task<ChainProgress> Advance(long untilStep);

    /// <summary>Where the member stands.</summary>
    Task<ChainProgress> Progress();

    /// <summary>Forgets the member: its checkpoint is deleted and the next <see cref="Start"/> begins at step 0.</summary>
    /// <exception cref="CheckpointException">Grain storage refused the deletion; the stored state is unchanged.</exception>
    Task Reset();

    /// <summary>The member's current state as <see cref="Serialization.StateFile"/> bytes.</summary>
    Task<byte[]> State();

    /// <summary>Log predictive probabilities of the member on the model's test set, [N·C] row-major, and C.</summary>
    Task<Prediction> PredictTest();
}

/// <summary>Log predictive probabilities [Rows, Classes], row-major float32 bytes (see <see cref="TreeWire"/>).</summary>
/// <param name="Rows">Number of inputs.</param>
/// <param name="Classes">Number of classes.</param>
/// <param name="LogProbs">The values' bytes.</param>
[GenerateSerializer, Immutable]
public sealed record Prediction(int Rows, int Classes, byte[] LogProbs)
{
    /// <summary>The log-probabilities as a [Rows, Classes] float32 tensor on the CPU.</summary>
    public Tensor ToTensor() => TreeWire.ToTensor(LogProbs).reshape(Rows, Classes);
}

/// <summary>What a chain grain keeps in grain storage.</summary>
[GenerateSerializer]
public sealed class ChainCheckpoint
{
    /// <summary>The member's spec (null before <see cref="IChainGrain.Start"/>).</summary>
    [Id(0)] public ChainSpec? Spec { get; set; }

    /// <summary>The state at <see cref="Step"/>, as state-file bytes.</summary>
    [Id(1)] public byte[]? State { get; set; }

    /// <summary>The step of <see cref="State"/>.</summary>
    [Id(2)] public long Step { get; set; }
}

/// <summary>Grain storage refused a checkpoint: the run stops, the last good checkpoint is intact and a resumed run continues from it.</summary>
[GenerateSerializer]
public sealed class CheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CheckpointException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public CheckpointException(string message, Exception inner) : base(message, inner) { }
}
