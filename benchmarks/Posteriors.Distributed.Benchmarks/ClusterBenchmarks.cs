using BenchmarkDotNet.Attributes;
using Posteriors.Distributed;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using Posteriors.Distributed.Sharding;
using Posteriors.Sgmcmc;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Benchmarks;

/// <summary>
/// The cluster's costs and gains on the MLP 784-512-512-10 (synthetic 28×28 images, batches of 128), every process with
/// one torch thread, a redis-server and two silo processes on loopback ports started in the global set-up and killed by PID
/// in the clean-up (each silo in a session of its own, one compute lane). One operation is <see cref="Steps"/> SGHMC steps,
/// one coordinator call of the default chunk. Quicker, with every comparison timed back to back in one process and the
/// CPU time of every process: <see cref="SameRunRatios"/> (<c>-- --ratios</c>).
/// <list type="bullet">
/// <item><see cref="OneProcessK4"/> (baseline) against <see cref="TwoSilosK4"/>: K = 4 members in this process (the
/// ensemble's chain-by-chain step) against the same members as grains on two silos. Goal: ratio ≤ 0.56 (throughput ≥ 1.8×).</item>
/// <item><see cref="LocalMember"/> against <see cref="RemoteMember"/>: one member stepped here or as a grain. Goal: ratio ≤ 1.05.</item>
/// <item><see cref="LocalStep"/> against <see cref="DataParallelStep"/>: one SGHMC step on a batch of 128 here, or with the
/// gradient summed over two shard grains (reported; it moves θ and the gradient, 2.7 MB each, per shard and step).</item>
/// </list>
/// Run: <c>dotnet run -c Release --project benchmarks/Posteriors.Distributed.Benchmarks -- --filter '*ClusterBenchmarks*' --job short</c>;
/// measured numbers in docs/DISTRIBUTED.md.
/// The K = 4 comparison needs one free core per silo.
/// </summary>
public class ClusterBenchmarks
{
    /// <summary>Steps per operation: one call of the coordinator's default chunk (<see cref="RunSpec.Chunk"/>).</summary>
    internal const int Steps = 10;
    internal static readonly ModelSpec Model = ModelSpec.Of(SyntheticClassifier.Name, ("train", 2048), ("test", 128), ("hidden", "512,512"), ("batch", 128));
    internal static readonly SamplerSpec Sampler = new(0.01, Alpha: 0.5, Sigma: 1, Temperature: 1.0 / 2048);

    private LocalCluster _cluster = null!;
    private ClusterConnection _connection = null!;
    private DistributedModel _model = null!;
    private SgmcmcState _stacked = null!, _single = null!;
    private SghmcState _local = null!, _remoteState = null!;
    private MemberSampler _member = null!;
    private ChainCoordinator _coordinator = null!;
    private ShardedData _shards = null!;
    private Sghmc<long[]> _dataParallel = null!;
    private Sghmc<(Tensor X, Tensor Y)> _localSampler = null!;
    private long _step, _remoteStep, _oneStep, _batchStep;

    [GlobalSetup]
    public async Task Setup()
    {
        set_num_threads(1);
        _model = new ModelCatalog().Build(Model);
        _member = MemberSampler.Build(_model.LogPosterior, Sampler);
        _stacked = _member.InitEnsemble(4, k => _model.InitialParameters(0, k), seed: 0);
        _single = _member.Init(_model.InitialParameters(0, 0), seed: 0, member: 0);

        _cluster = await LocalCluster.StartRedisAsync();
        await Task.WhenAll(_cluster.StartSiloAsync(), _cluster.StartSiloAsync());
        _connection = await ClusterConnection.ConnectAsync(_cluster.Address);
        await _connection.WaitForSilosAsync(2, TimeSpan.FromSeconds(60));
        _coordinator = new ChainCoordinator(_connection.Client);
        // Long runs with rare checkpoints: the operations measure stepping, not start-up or storage.
        var placed = await Task.WhenAll(Enumerable.Range(0, 4).Select(k => _coordinator.Member("k4", k).Start(Spec("k4", k))));
        await _coordinator.Member("one", 0).Start(Spec("one", 0));
        EnsureEvenPlacement(placed);
        // Warm the silos (tiered JIT of the messaging and stepping code) before BenchmarkDotNet's own warm-up.
        _remoteStep = _oneStep = 3 * Steps;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(k => _coordinator.Member("k4", k).Advance(_remoteStep)).Append(_coordinator.Member("one", 0).Advance(_oneStep)));

        _shards = new ShardedData(_connection.Client, "bench", Model, shards: 2);
        _dataParallel = Sghmc.Build(_shards.LogPosterior, 0.01, alpha: 0.5, temperature: 1.0 / 2048);
        _localSampler = Sghmc.Build(_model.LogPosterior, 0.01, alpha: 0.5, temperature: 1.0 / 2048);
        _local = _localSampler.Init(_model.InitialParameters(0, 1), seed: 1);
        _remoteState = _dataParallel.Init(_model.InitialParameters(0, 1), seed: 1);
        _dataParallel.Update(_remoteState, BatchIndices(0), inplace: true);   // builds the shards
    }

    internal static ChainSpec Spec(string run, int k) => new(run, k, Model, Sampler, 0, long.MaxValue, long.MaxValue);

    /// <summary>Two members per silo, or the comparison means nothing: says where they landed otherwise.</summary>
    /// <exception cref="InvalidOperationException">The members did not land two and two.</exception>
    internal static void EnsureEvenPlacement(IReadOnlyList<ChainProgress> placed)
    {
        var perSilo = placed.GroupBy(p => p.Silo).Select(g => g.Count()).ToArray();
        if (perSilo.Length != 2 || perSilo.Any(n => n != 2))
            throw new InvalidOperationException("The K = 4 members did not land two per silo: " + string.Join(", ", placed.Select(p => $"member {p.Member} on {p.Silo}")));
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _connection.DisposeAsync();
        await _cluster.DisposeAsync();
        _model.Dispose();
    }

    private long[] BatchIndices(long step) => _model.BatchIndices(0, step).data<long>().ToArray();

    [Benchmark(Baseline = true)]
    public void OneProcessK4()
    {
        for (var s = 0; s < Steps; s++)
        {
            using var scope = NewDisposeScope();
            _member.StepEnsemble(_stacked, _model.Batch(0, _step++));
        }
    }

    [Benchmark]
    public async Task TwoSilosK4()
    {
        _remoteStep += Steps;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(k => _coordinator.Member("k4", k).Advance(_remoteStep)));
    }

    [Benchmark]
    public void LocalMember()
    {
        for (var s = 0; s < Steps; s++)
        {
            using var scope = NewDisposeScope();
            _member.Step(_single, _model.Batch(0, _single.Step), member: 0);
        }
    }

    [Benchmark]
    public async Task RemoteMember()
    {
        _oneStep += Steps;
        await _coordinator.Member("one", 0).Advance(_oneStep);
    }

    [Benchmark]
    public void LocalStep()
    {
        for (var s = 0; s < Steps; s++)
        {
            using var scope = NewDisposeScope();
            _localSampler.Update(_local, _model.Batch(0, _batchStep++), inplace: true);
        }
    }

    [Benchmark]
    public void DataParallelStep()
    {
        for (var s = 0; s < Steps; s++)
        {
            using var scope = NewDisposeScope();
            _dataParallel.Update(_remoteState, BatchIndices(_batchStep++), inplace: true);
        }
    }
}
