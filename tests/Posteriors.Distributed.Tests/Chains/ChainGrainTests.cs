using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Models;
using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Tests.Chains;

[NonParallelizable]
public sealed class ChainGrainTests
{
    private TestClusterFixture _fixture = null!;

    [OneTimeSetUp]
    public async Task StartCluster() => _fixture = await TestClusterFixture.StartAsync(silos: 3);

    [OneTimeTearDown]
    public async Task StopCluster() => await _fixture.DisposeAsync();

    private static readonly ModelSpec Model = ModelSpec.Of(SyntheticClassifier.Name, ("train", 256), ("test", 64), ("hidden", 16), ("batch", 32));

    // T = 1/N, so every step draws noise: a lost or repeated draw would show in the final states.
    private static readonly SamplerSpec Sampler = new(new ScheduleSpec(0.05, 0.01, 60), Alpha: 0.5, Sigma: 1.0, Temperature: 1.0 / 256);

    /// <summary>The single-process ensemble over the same batches: the reference every grain must match bit for bit.</summary>
    private static SghmcState LocalRun(RunSpec spec)
    {
        using var model = new ModelCatalog().Build(spec.Model);
        var ensemble = MemberSampler.Ensemble(model.LogPosterior, spec.Sampler);
        var state = ensemble.Init(spec.Members, k => model.InitialParameters(spec.Seed, k), spec.Seed);
        for (long step = 0; step < spec.Steps; step++)
        {
            using var scope = NewDisposeScope();
            ensemble.Update(state, model.Batch(spec.Seed, step), inplace: true);
        }
        return state;
    }

    private static void AssertBitIdentical(SghmcState local, IReadOnlyList<SghmcState> members)
    {
        for (var k = 0; k < members.Count; k++)
        {
            Assert.That(members[k].Step, Is.EqualTo(local.Step), $"member {k} step");
            var (p, m) = (ParallelChains.Member(local.Params, k), ParallelChains.Member(local.Momenta, k));
            for (var i = 0; i < p.Count; i++)
            {
                Assert.That(Bits(members[k].Params.Leaves[i]), Is.EqualTo(Bits(p.Leaves[i])), $"member {k} parameter {p.Names[i]}");
                Assert.That(Bits(members[k].Momenta.Leaves[i]), Is.EqualTo(Bits(m.Leaves[i])), $"member {k} momentum {p.Names[i]}");
            }
        }
    }

    /// <summary>The raw bytes: equal bytes are equal numbers, signs of zeros and NaN payloads included.</summary>
    private static byte[] Bits(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    [Test]
    public async Task Six_members_survive_a_killed_silo_and_end_bit_identical_to_one_process()
    {
        var spec = new RunSpec("failover", Members: 6, Model, Sampler, Seed: 7, Steps: 60, CheckpointEvery: 10, Chunk: 5);
        var cluster = _fixture.Cluster;
        var startedOn = new Dictionary<int, string>();
        string? victim = null;
        // Lockstep reports arrive one by one between chunks, so the kill lands mid-run (after step 25) on every run.
        var progress = new SynchronousProgress(p =>
        {
            if (p.Step == 0) startedOn[p.Member] = p.Silo;
            else if (victim is null && p.Step >= 25)
            {
                // The busiest secondary silo (the primary holds the test cluster's membership table).
                var silo = cluster.Silos.Skip(1).OrderByDescending(s => startedOn.Values.Count(v => v == s.SiloAddress.ToString())).First();
                victim = silo.SiloAddress.ToString();
                cluster.KillSiloAsync(silo).GetAwaiter().GetResult();
            }
        });
        var result = await new ChainCoordinator(cluster.Client).RunAsync(spec, progress).WaitAsync(TimeSpan.FromSeconds(240));

        var onVictim = startedOn.Where(kv => kv.Value == victim).Select(kv => kv.Key).ToArray();
        Assert.That(onVictim, Is.Not.Empty, "no member ran on the killed silo, so nothing failed over");
        foreach (var k in onVictim)
        {
            var last = result.Trace.Last(p => p.Member == k);
            Assert.That(last.Silo, Is.Not.EqualTo(victim), $"member {k} moved");
            Assert.That(last.RestoredFrom, Is.GreaterThan(0).And.LessThan(spec.Steps), $"member {k} resumed from a mid-run checkpoint");
            Assert.That(last.RestoredFrom % spec.CheckpointEvery, Is.Zero);
        }
        AssertBitIdentical(LocalRun(spec), result.States);
    }

    [Test]
    public async Task Free_running_members_equal_one_process_and_a_rerun_reattaches()
    {
        var spec = new RunSpec("free", Members: 3, Model, Sampler, Seed: 3, Steps: 30, CheckpointEvery: 7, Chunk: 4, Pacing: Pacing.FreeRunning);
        var coordinator = new ChainCoordinator(_fixture.Cluster.Client);
        var first = await coordinator.RunAsync(spec);
        var local = LocalRun(spec);
        AssertBitIdentical(local, first.States);

        // Predictions are made where the members live, from the same states.
        using var model = new ModelCatalog().Build(spec.Model);
        var predictions = await coordinator.PredictAsync(spec);
        for (var k = 0; k < spec.Members; k++)
        {
            var expected = model.LogProbabilities(ParallelChains.Member(local.Params, k), model.TestX!);
            Assert.That(predictions[k].ToTensor().equal(expected).all().item<bool>(), Is.True, $"member {k} predictions");
        }

        // The same spec again (a restarted coordinator, --resume) finds the members finished and steps nothing.
        var again = await coordinator.RunAsync(spec);
        Assert.That(again.Trace.All(p => p.Step == spec.Steps), Is.True);
        // A different spec under the same run name is refused, naming the member.
        var clash = spec with { Seed = 4 };
        var e = Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.RunAsync(clash));
        Assert.That(e!.Message, Does.Contain("free/0"));
    }

    [Test]
    public async Task Unavailable_storage_stops_the_run_and_a_resumed_run_continues_from_the_last_good_checkpoint()
    {
        var spec = new RunSpec("storage", Members: 2, Model, Sampler, Seed: 11, Steps: 40, CheckpointEvery: 10, Chunk: 5);
        var coordinator = new ChainCoordinator(_fixture.Cluster.Client);
        SwitchableStorage.FailFrom = 30;
        try
        {
            var e = Assert.ThrowsAsync<CheckpointException>(() => coordinator.RunAsync(spec));
            Assert.That(e!.Message, Does.Contain("step 30").And.Contain("checkpoint of step 20 is intact"));
        }
        finally
        {
            SwitchableStorage.FailFrom = long.MaxValue;
        }
        // The members' memory is lost too (as when their silos go down with the store): they come back from storage.
        for (var k = 0; k < spec.Members; k++) await _fixture.Cluster.DeactivateAsync(coordinator.Member(spec.Run, k));

        var resumed = await coordinator.RunAsync(spec);
        var starts = resumed.Trace.Take(spec.Members).ToArray();   // the Start reports come first
        Assert.That(starts.Select(p => (p.Step, p.RestoredFrom)), Is.All.EqualTo((20L, 20L)), "resumed from the step-20 checkpoint");
        AssertBitIdentical(LocalRun(spec), resumed.States);
    }

    /// <summary>Reports on the caller's thread (Progress{T} posts to the thread pool, too late to time a kill).</summary>
    private sealed class SynchronousProgress(Action<ChainProgress> report) : IProgress<ChainProgress>
    {
        public void Report(ChainProgress value) => report(value);
    }
}
