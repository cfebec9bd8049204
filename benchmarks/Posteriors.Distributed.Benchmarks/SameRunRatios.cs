using System.Diagnostics;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Benchmarks;

/// <summary>
/// The two cluster goals measured in about a minute, without BenchmarkDotNet's process-per-benchmark: one redis-server and
/// two silo processes, then rounds that time the baseline and the candidates back to back (one process K = 4 against
/// two silos K = 4 and against the floor, two plain processes stepping K = 2 each at once, <see cref="PlainWorkers"/>;
/// one local member against one remote member), so that load from other work hits every side of every ratio alike.
/// Reports, per comparison, the median of the per-round time ratios and the CPU seconds every process spent (a silo that
/// uses more CPU than the work needs, or a member placed on the wrong silo, shows there), with where each member ran,
/// the machine's load, each silo's and worker's busy fraction (CPU ÷ wall time) and the silos' CPU by thread during the
/// K = 4 operation.
/// <code>dotnet run -c Release --project benchmarks/Posteriors.Distributed.Benchmarks -- --ratios [rounds] [steps]</code>
/// </summary>
public static class SameRunRatios
{
    /// <summary>Runs the rounds and prints the table.</summary>
    public static async Task RunAsync(int rounds, int steps, int lanes = 1, int warmup = 3)
    {
        set_num_threads(1);
        set_num_interop_threads(1);
        var spec = ClusterBenchmarks.Model;
        using var model = new ModelCatalog().Build(spec);
        var member = MemberSampler.Build(model.LogPosterior, ClusterBenchmarks.Sampler);
        var stacked = member.InitEnsemble(4, k => model.InitialParameters(0, k), seed: 0);
        var single = member.Init(model.InitialParameters(0, 0), seed: 0, member: 0);

        Console.WriteLine($"load before: {File.ReadAllText("/proc/loadavg").Trim()}");
        await using var cluster = await LocalCluster.StartRedisAsync();
        string[] siloArgs = ["--lanes", lanes.ToString()];
        var silos = await Task.WhenAll(cluster.StartSiloAsync(arguments: siloArgs), cluster.StartSiloAsync(arguments: siloArgs));
        await using var connection = await ClusterConnection.ConnectAsync(cluster.Address);
        await connection.WaitForSilosAsync(2, TimeSpan.FromSeconds(60));
        var coordinator = new ChainCoordinator(connection.Client);
        var placed = await Task.WhenAll(Enumerable.Range(0, 4).Select(k => coordinator.Member("k4", k).Start(ClusterBenchmarks.Spec("k4", k))));
        var one = await coordinator.Member("one", 0).Start(ClusterBenchmarks.Spec("one", 0));
        foreach (var silo in silos)
            Console.WriteLine($"silo pid {silo.Id}: {File.ReadAllText($"/proc/{silo.Id}/comm").Trim()}, session {File.ReadAllText($"/proc/{silo.Id}/stat").Split(' ')[5]}, {File.ReadAllText($"/proc/{silo.Id}/autogroup").Trim()}");
        Console.WriteLine($"placement: {string.Join(", ", placed.Select(p => $"k4/{p.Member}@{p.Silo}"))}; one/0@{one.Silo}");

        ClusterBenchmarks.EnsureEvenPlacement(placed);
        await using var workers = await PlainWorkers.StartAsync(2);
        Console.WriteLine($"plain worker pids: {string.Join(", ", workers.Processes.Select(w => w.Id))}");
        long step = 0, remote = 0, oneStep = 0;
        var processes = new[] { Process.GetCurrentProcess() }.Concat(silos).Concat(workers.Processes).ToArray();
        var names = new[] { "this process", "silo 0", "silo 1", "worker 0", "worker 1" };
        var ops = new (string Name, Func<Task> Run)[]
        {
            ("one process K=4", () =>
            {
                for (var s = 0; s < steps; s++)
                    using (NewDisposeScope()) member.StepEnsemble(stacked, model.Batch(0, step++));
                return Task.CompletedTask;
            }),
            ("two silos K=4", () =>
            {
                remote += steps;
                return Task.WhenAll(Enumerable.Range(0, 4).Select(k => coordinator.Member("k4", k).Advance(remote)));
            }),
            ("two plain K=2", () => workers.Step(steps)),
            ("local member", () =>
            {
                for (var s = 0; s < steps; s++)
                    using (NewDisposeScope()) member.Step(single, model.Batch(0, single.Step), member: 0);
                return Task.CompletedTask;
            }),
            ("remote member", () =>
            {
                oneStep += steps;
                return coordinator.Member("one", 0).Advance(oneStep);
            }),
        };
        for (var w = 0; w < warmup; w++) foreach (var op in ops) await op.Run(); // warm-up (tiered JIT in all three processes)

        var wall = new double[ops.Length][];
        var cpu = new double[ops.Length, processes.Length];
        for (var i = 0; i < ops.Length; i++) wall[i] = new double[rounds];
        var threadsBefore = processes.Select(p => ThreadTicks(p.Id)).ToArray();
        // The silos' CPU by thread during the K = 4 operation alone: stepping against messaging, timers and the JIT.
        var k4Threads = new[] { new Dictionary<string, long>(), new Dictionary<string, long>() };
        for (var r = 0; r < rounds; r++)
        {
            for (var i = 0; i < ops.Length; i++)
            {
                var silosBefore = i == 1 ? silos.Select(s => ThreadTicks(s.Id)).ToArray() : null;
                var before = CpuSeconds(processes);
                var clock = Stopwatch.StartNew();
                await ops[i].Run();
                wall[i][r] = clock.Elapsed.TotalMilliseconds;
                var after = CpuSeconds(processes);
                for (var p = 0; p < processes.Length; p++) cpu[i, p] += after[p] - before[p];
                if (silosBefore is null) continue;
                for (var p = 0; p < silos.Length; p++)
                    foreach (var (thread, ticks) in ThreadTicks(silos[p].Id))
                        k4Threads[p][thread.Name] = k4Threads[p].GetValueOrDefault(thread.Name) + ticks - silosBefore[p].GetValueOrDefault(thread);
            }
        }
        Console.WriteLine($"load after: {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine($"{rounds} rounds of {steps} steps; median ms per operation, CPU s per process over all rounds:");
        for (var i = 0; i < ops.Length; i++)
            Console.WriteLine($"  {ops[i].Name,-16} {Median(wall[i]),8:0.0} ms   cpu: " +
                              string.Join(", ", names.Select((n, p) => $"{n} {cpu[i, p]:0.00}")));
        Console.WriteLine($"two silos K=4 / one process K=4: {MedianRatio(wall[1], wall[0]):0.00} (goal <= 0.56)");
        Console.WriteLine($"two plain processes K=2+2 / one process K=4 (the floor): {MedianRatio(wall[2], wall[0]):0.00}; " +
                          $"two silos / two plain processes: {MedianRatio(wall[1], wall[2]):0.00} (the silos' overhead above the floor)");
        Console.WriteLine($"remote member / local member:     {MedianRatio(wall[4], wall[3]):0.00} (goal <= 1.05)");
        // A process busy for less than the operation's wall time waited: for messages, for a lane, or for the other silo.
        Console.WriteLine("busy fraction (CPU s / wall s) during the K=4 operations: " + string.Join(", ",
            new (int Op, int P)[] { (0, 0), (1, 1), (1, 2), (2, 3), (2, 4) }.Select(x => $"{ops[x.Op].Name}: {names[x.P]} {cpu[x.Op, x.P] / (wall[x.Op].Sum() / 1000):0.00}")));
        // Load-independent: the CPU the same work took. With one free core per silo the K = 4 time ratio approaches the
        // busiest silo's share; a remote member costs its silo's step plus this process's side of the call.
        var silosK4 = new[] { cpu[1, 1], cpu[1, 2] };
        Console.WriteLine($"CPU, K=4: silos {silosK4.Sum():0.00} s = {silosK4.Sum() / cpu[0, 0]:0.00}x one process's {cpu[0, 0]:0.00} s; " +
                          $"busiest silo {silosK4.Max() / cpu[0, 0]:0.00}x (the time ratio on free cores)");
        var workersK4 = new[] { cpu[2, 3], cpu[2, 4] };
        Console.WriteLine($"CPU, plain K=2+2: workers {workersK4.Sum():0.00} s = {workersK4.Sum() / cpu[0, 0]:0.00}x one process's; " +
                          $"busiest worker {workersK4.Max() / cpu[0, 0]:0.00}x; silos / workers {silosK4.Sum() / workersK4.Sum():0.00}");
        var remoteCpu = Enumerable.Range(0, processes.Length).Sum(p => cpu[4, p]);
        Console.WriteLine($"CPU, remote member (silos, workers + this process) / local member: {remoteCpu / cpu[3, 0]:0.00}");
        for (var p = 0; p < processes.Length; p++)
        {
            var after = ThreadTicks(processes[p].Id);
            var byName = after.Select(kv => (Name: kv.Key.Name, Ticks: kv.Value - threadsBefore[p].GetValueOrDefault(kv.Key)))
                .GroupBy(t => t.Name).Select(g => (g.Key, Ticks: g.Sum(t => t.Ticks))).Where(g => g.Ticks > 0).Select(g => $"{g.Key} {g.Ticks / 100.0:0.00}").ToArray();
            Console.WriteLine($"  {names[p]} CPU s by thread name over the rounds: {string.Join(", ", byName)}");
        }
        for (var p = 0; p < silos.Length; p++)
            Console.WriteLine($"  silo {p} CPU s by thread name during two silos K=4: " +
                              string.Join(", ", k4Threads[p].Where(t => t.Value > 0).Select(t => $"{t.Key} {t.Value / 100.0:0.00}")));
        stacked.Dispose();
        single.Dispose();
    }

    private static double[] CpuSeconds(Process[] processes) =>
        processes.Select(p =>
        {
            p.Refresh();
            return p.TotalProcessorTime.TotalSeconds;
        }).ToArray();

    private static Dictionary<(int Id, string Name), long> ThreadTicks(int pid)
    {
        var rows = new Dictionary<(int, string), long>();
        foreach (var dir in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var close = stat.LastIndexOf(')');
                var fields = stat[(close + 2)..].Split(' ');
                rows[(int.Parse(Path.GetFileName(dir)), stat[(stat.IndexOf('(') + 1)..close])] = long.Parse(fields[11]) + long.Parse(fields[12]);
            }
            catch (IOException) { }
        }
        return rows;
    }

    private static double Median(double[] xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static double MedianRatio(double[] candidate, double[] baseline) => Median(candidate.Zip(baseline, (c, b) => c / b).ToArray());
}
