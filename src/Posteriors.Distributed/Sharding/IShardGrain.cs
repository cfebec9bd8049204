namespace Posteriors.Distributed.Sharding;

/// <summary>
/// Rows [<see cref="Lo"/>, <see cref="Hi"/>) of a model's training set (and the same share of its test set), held by one
/// shard grain: shard <paramref name="Shard"/> of <paramref name="Shards"/> equal contiguous ranges.
/// </summary>
/// <param name="Data">The data set's name: with the shard index it names the grain.</param>
/// <param name="Model">The model whose data and likelihood the shard uses.</param>
/// <param name="Shard">The shard index.</param>
/// <param name="Shards">The number of shards.</param>
[GenerateSerializer, Immutable]
public sealed record ShardSpec(string Data, ModelSpec Model, int Shard, int Shards)
{
    /// <summary>The grain key.</summary>
    public string Key => $"{Data}/{Shard}";

    /// <summary>The first row of a set of <paramref name="n"/> rows.</summary>
    public long Lo(long n) => n * Shard / Shards;

    /// <summary>One past the last row of a set of <paramref name="n"/> rows.</summary>
    public long Hi(long n) => n * (Shard + 1) / Shards;

    /// <summary>Checks the indices.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The shard index or count is out of range.</exception>
    public ShardSpec Validated()
    {
        if (Shards < 1) throw new ArgumentOutOfRangeException(nameof(Shards), Shards, "There must be at least one shard.");
        if (Shard < 0 || Shard >= Shards) throw new ArgumentOutOfRangeException(nameof(Shard), Shard, $"The shard index must lie in [0, {Shards}).");
        ArgumentNullException.ThrowIfNull(Model);
        return this;
    }
}

/// <summary>A shard's part of a mini-batch: how many of the batch's rows it holds, their batch-normalised log posterior and its gradient.</summary>
/// <param name="Count">Rows of the batch in this shard (0: value and gradient are empty).</param>
/// <param name="Value">The log posterior of those rows (mean log-likelihood + log prior / N).</param>
/// <param name="Gradient">Its gradient, flattened in the tree's order (float32 bytes, see <see cref="TreeWire"/>).</param>
[GenerateSerializer, Immutable]
public sealed record ShardGradient(int Count, double Value, byte[] Gradient);

/// <summary>Which Laplace curvature a shard sums.</summary>
public enum CurvatureKind
{
    /// <summary>Diagonal empirical Fisher.</summary>
    DiagFisher,

    /// <summary>Dense empirical Fisher.</summary>
    DenseFisher,

    /// <summary>Diagonal generalised Gauss–Newton.</summary>
    DiagGgn,

    /// <summary>Dense generalised Gauss–Newton.</summary>
    DenseGgn,
}

/// <summary>
/// Grain holding one data shard: mini-batch gradients, Laplace curvature and test-set predictions over its rows, so the
/// client sums what the shards return instead of moving the data. Every call carries its spec, so a shard whose silo died
/// is rebuilt on another one at the next call.
/// </summary>
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>The part of the mini-batch with global training-row indices <paramref name="batch"/> that lies in this shard, at θ (<see cref="TreeWire"/> bytes).</summary>
    Task<ShardGradient> Gradient(ShardSpec spec, byte[] parameters, long[] batch);

    /// <summary>
    /// The likelihood curvature of <paramref name="kind"/> summed over the shard's training rows at θ (no prior), in chunks
    /// of <paramref name="chunk"/> rows: flattened tree (diagonal) or D×D row-major (dense).
    /// </summary>
    Task<byte[]> Curvature(ShardSpec spec, byte[] parameters, CurvatureKind kind, int chunk);

    /// <summary>Log predictive probabilities [rows, C] of the shard's test rows at each of the given parameter vectors, stacked [S, rows, C].</summary>
    Task<Chains.Prediction[]> TestLogProbs(ShardSpec spec, byte[][] parameters);
}
