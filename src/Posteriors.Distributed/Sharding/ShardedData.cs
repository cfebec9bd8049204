using Posteriors.Distributed.Chains;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Sharding;

/// <summary>
/// A model's data split over shard grains, seen from the client: a log posterior whose mini-batch gradient is summed over
/// the shards (so any sampler or VI step of the runtime runs data-parallel unchanged), Laplace precisions as sums of
/// shard contributions, and predictions over the sharded test set.
/// </summary>
public sealed class ShardedData
{
    private readonly IGrainFactory _grains;
    private readonly ShardSpec[] _shards;

    /// <summary>The data of <paramref name="model"/> split into <paramref name="shards"/> shards named <paramref name="name"/>/k.</summary>
    public ShardedData(IGrainFactory grains, string name, ModelSpec model, int shards)
    {
        _grains = grains ?? throw new ArgumentNullException(nameof(grains));
        if (shards < 1) throw new ArgumentOutOfRangeException(nameof(shards), shards, "There must be at least one shard.");
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _shards = Enumerable.Range(0, shards).Select(k => new ShardSpec(name, model, k, shards).Validated()).ToArray();
    }

    /// <summary>The number of shards.</summary>
    public int Shards => _shards.Length;

    /// <summary>How often a shard call is repeated after a silo failure (the shard is rebuilt from its spec elsewhere).</summary>
    public int MaxRetries { get; init; } = 20;

    /// <summary>The wait before a repeated shard call.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Calls shard <paramref name="s"/>; every shard call is a pure function of its arguments, so repeating one is safe.</summary>
    private async Task<T> Call<T>(ShardSpec s, Func<IShardGrain, Task<T>> call)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call(_grains.GetGrain<IShardGrain>(s.Key));
            }
            catch (Exception e) when (ChainCoordinator.IsSiloFailure(e) && attempt < MaxRetries)
            {
                await Task.Delay(RetryDelay);
            }
        }
    }

    /// <summary>
    /// The batch-normalised log posterior of the mini-batch with global row indices <c>batch</c>, evaluated on the shards:
    /// shard s returns the log posterior of its b_s rows, and Σ_s (b_s / B) · (mean_s + log p(θ)/N) = mean + log p(θ)/N.
    /// Its value is that number and its gradient the same weighted sum of shard gradients (a linear surrogate in θ carries
    /// it through autograd, so samplers and reparameterised VI differentiate it like a local log posterior).
    /// </summary>
    public LogPosterior<long[]> LogPosterior => (θ, batch) =>
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Length == 0) throw new ArgumentException("The mini-batch is empty.", nameof(batch));
        var flat = TreeWire.ToBytes(θ);
        var parts = Task.WhenAll(_shards.Select(s => Call(s, g => g.Gradient(s, flat, batch)))).GetAwaiter().GetResult();
        var total = parts.Sum(p => p.Count);
        if (total != batch.Length)
            throw new ArgumentException($"{batch.Length - total} of the batch's row indices lie outside the training set.", nameof(batch));
        var value = 0.0;
        var grad = new double[θ.NumberOfElements];
        foreach (var p in parts.Where(p => p.Count > 0))
        {
            var w = (double)p.Count / total;
            value += w * p.Value;
            var g = TreeWire.Floats(p.Gradient);
            for (var i = 0; i < grad.Length; i++) grad[i] += w * g[i];
        }
        using var sum = tensor(grad);
        var gradient = θ.Unflatten(sum.to(θ.ScalarType).to(θ.Device));
        // value + ⟨θ − stop_grad(θ), g⟩: equal to the value, with gradient g.
        var surrogate = θ.Leaves.Zip(gradient.Leaves, (t, gi) => (t - t.detach()).mul(gi).sum()).Aggregate((a, b) => a + b);
        return surrogate + value;
    };

    /// <summary>
    /// The Laplace precision of <paramref name="kind"/> at <paramref name="mode"/>: the prior's <paramref name="priorPrecision"/>
    /// plus the sum of the shards' likelihood curvature — a tree for the diagonal kinds (<see cref="DiagPrecisionAsync"/>).
    /// </summary>
    public async Task<ParameterTree> DiagPrecisionAsync(ParameterTree mode, CurvatureKind kind, double priorPrecision, int chunk = 256)
    {
        if (kind is not (CurvatureKind.DiagFisher or CurvatureKind.DiagGgn))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Use DensePrecisionAsync for a dense curvature.");
        var sum = await SumAsync(mode, kind, chunk);
        using var t = tensor(sum);
        return mode.Unflatten(t.add(priorPrecision).to(mode.ScalarType).to(mode.Device));
    }

    /// <summary>The dense Laplace precision (D×D over the whole tree) of <paramref name="kind"/>: prior precision·I plus the shards' sum.</summary>
    public async Task<Tensor> DensePrecisionAsync(ParameterTree mode, CurvatureKind kind, double priorPrecision, int chunk = 256)
    {
        if (kind is not (CurvatureKind.DenseFisher or CurvatureKind.DenseGgn))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Use DiagPrecisionAsync for a diagonal curvature.");
        var sum = await SumAsync(mode, kind, chunk);
        var d = mode.NumberOfElements;
        using var flat = tensor(sum);
        return (flat.reshape(d, d) + eye(d, dtype: ScalarType.Float64) * priorPrecision).to_type(mode.ScalarType).to(mode.Device);
    }

    private async Task<double[]> SumAsync(ParameterTree mode, CurvatureKind kind, int chunk)
    {
        var flat = TreeWire.ToBytes(mode);
        var parts = await Task.WhenAll(_shards.Select(s => Call(s, g => g.Curvature(s, flat, kind, chunk))));
        var sum = new double[parts[0].Length / sizeof(float)];
        foreach (var p in parts)
        {
            var values = TreeWire.Floats(p);
            for (var i = 0; i < sum.Length; i++) sum[i] += values[i];
        }
        return sum;
    }

    /// <summary>Log predictive probabilities [S, N_test, C] of S parameter sets over the sharded test set, in row order.</summary>
    public async Task<Tensor> TestLogProbsAsync(IReadOnlyList<ParameterTree> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        var flat = members.Select(TreeWire.ToBytes).ToArray();
        var parts = await Task.WhenAll(_shards.Select(s => Call(s, g => g.TestLogProbs(s, flat))));
        return stack(Enumerable.Range(0, members.Count).Select(m =>
            cat(parts.Select(p => p[m].ToTensor()).ToArray(), 0)).ToArray());
    }
}
