using System.Diagnostics;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using Posteriors.Distributed.Tests.Chains;
using StackExchange.Redis;

namespace Posteriors.Distributed.Tests.Hosting;

/// <summary>A real deployment in miniature: redis-server and two silo processes on loopback ports, started and stopped by the test.</summary>
[NonParallelizable]
public sealed class RedisClusterTests
{
    [Test, CancelAfter(180_000)]
    public async Task Two_silo_processes_on_redis_run_members_bit_identical_to_one_process()
    {
        await using var cluster = await LocalCluster.StartRedisAsync();
        await Task.WhenAll(cluster.StartSiloAsync(), cluster.StartSiloAsync());

        await using var connection = await ClusterConnection.ConnectAsync(cluster.Address);
        await connection.WaitForSilosAsync(2, TimeSpan.FromSeconds(60));
        var model = ModelSpec.Of(SyntheticClassifier.Name, ("train", 128), ("test", 32), ("hidden", 8), ("batch", 32));
        var spec = new RunSpec("redis", Members: 4, model, new SamplerSpec(0.05, Alpha: 0.5, Sigma: 1, Temperature: 1.0 / 128), Seed: 2,
            Steps: 12, CheckpointEvery: 4, Chunk: 4, Pacing: Pacing.FreeRunning);
        var result = await new ChainCoordinator(connection.Client).RunAsync(spec);

        Assert.That(result.Trace.Select(p => p.Silo).Distinct().Count(), Is.EqualTo(2), "members ran on both silo processes");
        AssertMatchesOneProcess(spec, result);
    }

    [Test, CancelAfter(180_000)]
    public async Task Members_survive_a_killed_silo_process_and_end_bit_identical_to_one_process()
    {
        await using var cluster = await LocalCluster.StartRedisAsync();
        var fast = new[] { "--probe-timeout", "1", "--death-votes", "1" };
        var silos = await Task.WhenAll(cluster.StartSiloAsync(arguments: fast), cluster.StartSiloAsync(arguments: fast));
        await using var connection = await ClusterConnection.ConnectAsync(cluster.Address);
        await connection.WaitForSilosAsync(2, TimeSpan.FromSeconds(60));
        var model = ModelSpec.Of(SyntheticClassifier.Name, ("train", 128), ("test", 32), ("hidden", 8), ("batch", 32));
        var spec = new RunSpec("killed", Members: 4, model, new SamplerSpec(0.05, Alpha: 0.5, Sigma: 1, Temperature: 1.0 / 128), Seed: 6,
            Steps: 40, CheckpointEvery: 5, Chunk: 5);
        var startedOn = new Dictionary<int, string>();
        var killed = false;
        // Lockstep reports arrive between chunks: the second silo process is killed by PID after step 15.
        var progress = new SynchronousProgress(p =>
        {
            if (p.Step == 0) startedOn[p.Member] = p.Silo;
            else if (!killed && p.Step >= 15)
            {
                killed = true;
                silos[1].Kill();
                silos[1].WaitForExit();
            }
        });
        var result = await new ChainCoordinator(connection.Client) { MaxRetries = 60 }.RunAsync(spec, progress);

        Assert.That(killed, Is.True);
        var moved = startedOn.Where(kv => result.Trace.Last(p => p.Member == kv.Key).Silo != kv.Value).Select(kv => kv.Key).ToArray();
        Assert.That(moved, Is.Not.Empty, "members of the killed silo moved to the survivor");
        foreach (var k in moved)
            Assert.That(result.Trace.Last(p => p.Member == k).RestoredFrom, Is.GreaterThanOrEqualTo(15).And.LessThan(spec.Steps), $"member {k} resumed from a checkpoint");
        AssertMatchesOneProcess(spec, result);
    }

    private static void AssertMatchesOneProcess(RunSpec spec, RunResult result) => OneProcess.AssertBitIdentical(OneProcess.Run(spec), result.States);

    private sealed class SynchronousProgress(Action<ChainProgress> report) : IProgress<ChainProgress>
    {
        public void Report(ChainProgress value) => report(value);
    }

    [Test, CancelAfter(60_000)]
    public async Task A_silo_of_another_protocol_version_is_refused_with_a_message()
    {
        await using var cluster = await LocalCluster.StartRedisAsync();
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(cluster.Address))
            await mux.GetDatabase().StringSetAsync(ClusterProtocol.Key("older"), ClusterProtocol.Version + 1);

        var silo = await cluster.StartSiloAsync(wait: false, arguments: new[] { "--service-id", "older" });
        var stderr = silo.StandardError.ReadToEndAsync();
        await silo.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(50));
        Assert.That(silo.ExitCode, Is.EqualTo(3));
        Assert.That(await stderr, Does.Contain($"runs protocol version {ClusterProtocol.Version + 1}").And.Contain("older"));

        // A client is refused the same way.
        var e = Assert.ThrowsAsync<IncompatibleClusterException>(() => ClusterConnection.ConnectAsync(cluster.Address, serviceId: "older"));
        Assert.That(e!.Message, Does.Contain(cluster.Address));
    }

    [Test]
    public void An_unreachable_cluster_is_reported_within_ten_seconds_naming_the_address()
    {
        var address = $"127.0.0.1:{LocalCluster.FreePort()}";
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<ClusterUnreachableException>(() => ClusterConnection.ConnectAsync(address));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(e!.Message, Does.Contain(address));
    }

    [Test, CancelAfter(60_000)]
    public async Task A_cluster_whose_redis_answers_but_no_silo_runs_is_reported_within_ten_seconds_naming_the_address()
    {
        await using var cluster = await LocalCluster.StartRedisAsync();
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<ClusterUnreachableException>(() => ClusterConnection.ConnectAsync(cluster.Address));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(e!.Message, Does.Contain(cluster.Address).And.Contain("No silo"));
    }

    [Test, CancelAfter(120_000)]
    public async Task A_silo_started_with_the_dashboard_flag_serves_the_orleans_dashboard()
    {
        await using var cluster = await LocalCluster.StartRedisAsync();
        var port = LocalCluster.FreePort();
        await cluster.StartSiloAsync(arguments: ["--dashboard", port.ToString()]);
        await LocalCluster.WaitForPortAsync(port, TimeSpan.FromSeconds(30), "The dashboard");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using var page = await http.GetAsync($"http://127.0.0.1:{port}/");
        Assert.That(page.IsSuccessStatusCode, Is.True, $"GET / answered {(int)page.StatusCode}");
        Assert.That(await page.Content.ReadAsStringAsync(), Does.Contain("Orleans").IgnoreCase);
    }
}
