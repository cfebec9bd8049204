using System.Diagnostics;
using Posteriors.Distributed.Models;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Benchmarks;

/// <summary>
/// The floor under the two-silo K = 4 ratio: two plain processes of this executable (<c>--worker</c>), each stepping a
/// stacked K = 2 ensemble of the benchmark's MLP with one torch thread, as the one-process baseline steps its K = 4, with
/// no Orleans, no messages and no grains. Started in sessions of their own as the silos are, with the same allocator
/// environment; told to step over standard input and answering on standard output, so that an operation costs a pipe
/// write and read on top of the steps. Two such processes at once is the best this machine's two cores can do with
/// K = 4 split two and two; the silos' overhead is their ratio above this one.
/// </summary>
public sealed class PlainWorkers : IAsyncDisposable
{
    private readonly Process[] _workers;

    private PlainWorkers(Process[] workers) => _workers = workers;

    /// <summary>The worker processes.</summary>
    public IReadOnlyList<Process> Processes => _workers;

    /// <summary>Starts <paramref name="count"/> workers, worker w stepping members 2w and 2w + 1, and waits until each is ready.</summary>
    public static async Task<PlainWorkers> StartAsync(int count)
    {
        var dll = typeof(PlainWorkers).Assembly.Location;
        var workers = new List<Process>();
        try
        {
            for (var w = 0; w < count; w++)
            {
                var info = new ProcessStartInfo("/usr/bin/setsid")
                    { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in new[] { "dotnet", dll, "--worker", (2 * w).ToString() }) info.ArgumentList.Add(a);
                workers.Add(Process.Start(info) ?? throw new InvalidOperationException("Could not start a worker."));
            }
            foreach (var w in workers)
            {
                var line = await w.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120));
                if (line != "ready") throw new InvalidOperationException($"Worker {w.Id} said '{line}': {await w.StandardError.ReadToEndAsync()}");
            }
            return new PlainWorkers(workers.ToArray());
        }
        catch
        {
            await new PlainWorkers(workers.ToArray()).DisposeAsync();
            throw;
        }
    }

    /// <summary>Every worker steps its two members <paramref name="steps"/> times, all at once; completes when all are done.</summary>
    public Task Step(int steps) => Task.WhenAll(_workers.Select(async w =>
    {
        await w.StandardInput.WriteLineAsync(steps.ToString());
        await w.StandardInput.FlushAsync();
        var line = await w.StandardOutput.ReadLineAsync();
        if (line != "done") throw new InvalidOperationException($"Worker {w.Id} said '{line}'.");
    }));

    /// <summary>The worker's side: steps a stacked K = 2 ensemble (members <paramref name="first"/>, +1) the number of times each input line says.</summary>
    public static void RunWorker(int first)
    {
        set_num_threads(1);
        set_num_interop_threads(1);
        using var model = new ModelCatalog().Build(ClusterBenchmarks.Model);
        var member = MemberSampler.Build(model.LogPosterior, ClusterBenchmarks.Sampler);
        using var stacked = member.InitEnsemble(2, k => model.InitialParameters(0, first + k), seed: 0);
        long step = 0;
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        while (Console.In.ReadLine() is { } line)
        {
            var steps = int.Parse(line);
            for (var s = 0; s < steps; s++)
                using (NewDisposeScope()) member.StepEnsemble(stacked, model.Batch(0, step++));
            Console.Out.WriteLine("done");
            Console.Out.Flush();
        }
    }

    /// <summary>Closes the workers' input (they exit) and kills any left, by PID.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var w in _workers)
        {
            try
            {
                w.StandardInput.Close();
                await w.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
            {
                if (!w.HasExited) w.Kill();
            }
            finally { w.Dispose(); }
        }
    }
}
