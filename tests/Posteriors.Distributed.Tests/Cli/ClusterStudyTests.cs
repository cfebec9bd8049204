using System.Diagnostics;
using Posteriors.Cli.Study;
using Posteriors.Distributed.Hosting;
using StackExchange.Redis;
using Spectre.Console;

namespace Posteriors.Distributed.Tests.Cli;

/// <summary>The main job's <c>--cluster</c>: the chain-based methods on silos write what a local run writes.</summary>
[NonParallelizable]
public sealed class ClusterStudyTests
{
    private static readonly string[] Study =
        "--synthetic --no-install --train-size 300 --test-size 200 --epochs 2 --members 2 --methods ensemble sghmc-parallel --temperatures 1 --threads 1 --no-plots --widths 4,4,8 -b 50"
            .Split(' ');

    private static (int Code, string Output) Run(params string[] args)
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No });
        return (Posteriors.Cli.Commands.Cli.Run(args, console), output.ToString());
    }

    /// <summary>The latest run's results.csv under an output folder, without its last column (the run's wall-clock seconds).</summary>
    private static string[] Results(string output) =>
        File.ReadAllLines(Path.Combine(output, "latest", "results.csv")).Select(l => l[..l.LastIndexOf(',')]).ToArray();

    [Test, CancelAfter(240_000)]
    public async Task The_main_job_on_a_cluster_writes_the_results_of_a_local_run()
    {
        var folder = Path.Combine(Path.GetTempPath(), "posteriors-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartRedisAsync();
            await Task.WhenAll(cluster.StartSiloAsync(), cluster.StartSiloAsync());
            var local = Run([.. Study, "-o", Path.Combine(folder, "local")]);
            var remote = Run([.. Study, "-o", Path.Combine(folder, "cluster"), "--cluster", cluster.Address]);

            Assert.That(local.Code, Is.Zero, local.Output);
            Assert.That(remote.Code, Is.Zero, remote.Output);
            Assert.That(remote.Output, Does.Contain($"cluster: {cluster.Address}"));
            var expected = Results(Path.Combine(folder, "local"));
            Assert.That(expected, Has.Length.EqualTo(3), "a header and the two chain-based methods");
            Assert.That(Results(Path.Combine(folder, "cluster")), Is.EqualTo(expected));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Test, CancelAfter(240_000)]
    public async Task Refused_checkpoints_stop_the_main_job_and_resume_ends_with_the_results_of_a_local_run()
    {
        var folder = Path.Combine(Path.GetTempPath(), "posteriors-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var cluster = await LocalCluster.StartRedisAsync();
            await Task.WhenAll(cluster.StartSiloAsync(), cluster.StartSiloAsync());
            var local = Run([.. Study, "-o", Path.Combine(folder, "local")]);
            Assert.That(local.Code, Is.Zero, local.Output);

            // Once the job's members touch grain storage (a key naming the run appears: a reset or a first checkpoint),
            // Redis refuses every write, as a store that is full or down would, but still answers reads; the next
            // write or deletion of a member's checkpoint fails.
            await using var redis = await ConnectionMultiplexer.ConnectAsync($"{cluster.Address},allowAdmin=true");
            var server = redis.GetServer(redis.GetEndPoints()[0]);
            await server.ConfigSetAsync("maxmemory-policy", "noeviction");
            string[] onCluster = [.. Study, "-o", Path.Combine(folder, "cluster"), "--cluster", cluster.Address];
            var job = Task.Run(() => Run(onCluster));
            while (!job.IsCompleted && !server.Keys(pattern: "*study-*").Any()) await Task.Delay(5);
            await server.ConfigSetAsync("maxmemory", "1");
            var stopped = await job;
            Assert.That(stopped.Code, Is.EqualTo(ClusterEnsemble.StoppedExitCode), stopped.Output);
            Assert.That(stopped.Output.Replace("\n", ""), Does.Match("could not (write|delete) its checkpoint").And.Contain("grain storage").And.Contain("--resume"));

            await server.ConfigSetAsync("maxmemory", "0");
            var resumed = Run([.. onCluster, "--resume"]);
            Assert.That(resumed.Code, Is.Zero, resumed.Output);
            Assert.That(Results(Path.Combine(folder, "cluster")), Is.EqualTo(Results(Path.Combine(folder, "local"))));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void An_unreachable_cluster_stops_the_main_job_within_ten_seconds_naming_the_address()
    {
        var address = $"127.0.0.1:{LocalCluster.FreePort()}";
        var clock = Stopwatch.StartNew();
        var (code, output) = Run([.. Study, "-o", Path.Combine(Path.GetTempPath(), "posteriors-unreached"), "--cluster", address]);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
        Assert.That(code, Is.EqualTo(4));
        Assert.That(output.Replace("\n", ""), Does.Contain(address));
    }
}
