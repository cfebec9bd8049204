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
        OneProcess.AssertBitIdentical(OneProcess.Run(spec), result.States);
    }

    [Test]
    public async Task Free_running_members_equal_one_process_and_a_rerun_reattaches()
    {
        var spec = new RunSpec("free", Members: 3, Model, Sampler, Seed: 3, Steps: 30, CheckpointEvery: 7, Chunk: 4, Pacing: Pacing.FreeRunning);
        var coordinator = new ChainCoordinator(_fixture.Cluster.Client);
        var first = await coordinator.RunAsync(spec);
        var local = OneProcess.Run(spec);
        OneProcess.AssertBitIdentical(local, first.States);

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
        OneProcess.AssertBitIdentical(OneProcess.Run(spec), resumed.States);
    }

    [Test]
    public async Task Every_ensemble_sampler_runs_as_members_bit_identical_to_one_process_across_a_reactivation()
    {
        var samplers = new[]
        {
            SamplerSpec.Sgld(0.02, 1.0 / 256, beta: 0.1),
            SamplerSpec.Sgnht(0.02, alpha: 0.5, sigma: 1.0, 1.0 / 256, xi: 0.3),
            SamplerSpec.Baoa(0.02, alpha: 0.5, sigma: 1.0, 1.0 / 256),
            SamplerSpec.Sglrw(0.02, 1.0 / 256),
        };
        var specs = samplers.Select(s => new RunSpec($"kind-{s.Kind}", Members: 2, Model, s, Seed: 5, Steps: 12, CheckpointEvery: 5, Chunk: 4)).ToArray();
        var coordinator = new ChainCoordinator(_fixture.Cluster.Client);
        // Half-way, every member is dropped from memory: it comes back from its step-5 checkpoint and recomputes steps 5 and 6.
        await Task.WhenAll(specs.SelectMany(spec => Enumerable.Range(0, spec.Members).Select(async k =>
        {
            var member = coordinator.Member(spec.Run, k);
            await member.Start(spec.Member(k));
            await member.Advance(6);
            await _fixture.Cluster.DeactivateAsync(member);
        })));
        var results = await Task.WhenAll(specs.Select(spec => coordinator.RunAsync(spec)));

        Assert.Multiple(() =>
        {
            for (var i = 0; i < specs.Length; i++)
            {
                Assert.That(results[i].Trace.Take(specs[i].Members).Select(p => p.RestoredFrom), Is.All.EqualTo(5L), $"{samplers[i].Kind} resumed");
                OneProcess.AssertBitIdentical(OneProcess.Run(specs[i]), results[i].States);
            }
        });
    }

    /// <summary>Reports on the caller's thread (Progress{T} posts to the thread pool, too late to time a kill).</summary>
    private sealed class SynchronousProgress(Action<ChainProgress> report) : IProgress<ChainProgress>
    {
        public void Report(ChainProgress value) => report(value);
    }
}
