using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Posteriors.Distributed;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using Posteriors.Models;
using Posteriors.Trees;
using Spectre.Console;

namespace Posteriors.Cli.Study;

/// <summary>
/// <c>--cluster HOST:PORT</c>: the chain-based methods (ensemble, sghmc-parallel) run their members as chain grains on a
/// Posteriors cluster (membership in Redis at that address), computing what the local run computes bit for bit when the
/// silos use as many torch threads as <c>--threads</c>; predictions are made here from the returned final states.
/// </summary>
public static class ClusterEnsemble
{
    private static ClusterConnection? _connection;

    /// <summary>Exit code of the main job when the cluster cannot be reached or refuses this version.</summary>
    public const int UnreachableExitCode = 4;

    /// <summary>Exit code of the main job when a cluster run stopped (checkpoint storage refused a write, or silos were lost for good).</summary>
    public const int StoppedExitCode = 5;

    /// <summary>
    /// The failure that stopped a cluster run, if <paramref name="e"/> (or an exception inside it) is one: grain storage
    /// refused a checkpoint, or a member's silo stayed unreachable after the coordinator's retries. The members' last
    /// checkpoints are intact either way, so the same command with <c>--resume</c> continues from them.
    /// </summary>
    public static Exception? StoppedRun(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
            if (inner is CheckpointException || ChainCoordinator.IsSiloFailure(inner)) return inner;
        return null;
    }

    /// <summary>Connects once, before any training, so a wrong address fails within 10 s; false (after a message) when it cannot.</summary>
    public static bool TryConnect(StudyOptions options, IAnsiConsole console)
    {
        if (options.Cluster is null) return true;
        try
        {
            if (_connection?.Address != options.Cluster)
                _connection = ClusterConnection.ConnectAsync(options.Cluster).GetAwaiter().GetResult();
            console.MarkupLine($"cluster: [bold]{Markup.Escape(options.Cluster)}[/] (ensemble and sghmc-parallel members run as grains)");
            return true;
        }
        catch (Exception e) when (e is ClusterUnreachableException or IncompatibleClusterException)
        {
            console.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
            return false;
        }
    }

    /// <summary>
    /// Runs K members of SGHMC (the settings of <see cref="Methods.ParallelSghmcMethod"/>) on the cluster and returns their
    /// final parameters. The run's name is a hash of everything it computes, so the same command with <c>--resume</c>
    /// continues an interrupted run from its members' checkpoints; without it the members start again from step 0.
    /// </summary>
    public static IReadOnlyList<ParameterTree> Run(StudyContext context, SamplerSpec sampler, int seed, Action<long, string> progress)
    {
        var options = context.Options;
        var connection = _connection ?? throw new InvalidOperationException("--cluster was given but no connection was made (TryConnect).");
        var model = ModelFor(context, seed);
        var steps = context.TrainingSteps;
        var name = "study-" + Hash($"{model}|{sampler}|{seed}|{steps}|{context.Members}");
        var spec = new RunSpec(name, context.Members, model, sampler, seed, steps,
            CheckpointEvery: context.StepsPerEpoch, Chunk: Math.Max(1, context.StepsPerEpoch / 20));
        var report = new Reporter(context.Members, progress);
        var result = new ChainCoordinator(connection.Client).RunAsync(spec, report, fresh: !options.Resume).GetAwaiter().GetResult();
        return result.States.Select(s => s.Params.To(context.Device)).ToArray();
    }

    /// <summary>The study's CNN, data and batch order as a model every silo rebuilds identically.</summary>
    private static ModelSpec ModelFor(StudyContext context, int seed)
    {
        var o = context.Options;
        var settings = new List<(string, object)>
        {
            ("widths", $"{context.Widths.C1},{context.Widths.C2},{context.Widths.Hidden}"),
            ("subset", o.TrainSize!.Value), ("subset_seed", 11), ("batch", context.BatchSize), ("prior_sd", SmallCnn.DefaultPriorSd),
            // As StudyContext: member k from InitialParameters(seed·1000 + k + 1), batches from Batches(seed).
            ("init_seed", seed * 1000L + 1), ("batch_seed", unchecked((long)(ulong)(1_000_003L * seed + 17))),
        };
        if (context.Train.IsSynthetic)
            settings.AddRange(new (string, object)[] { ("data", "synthetic"), ("synthetic_train", Math.Max(o.TrainSize!.Value, 1000)),
                ("synthetic_test", Math.Max(o.TestSize!.Value, 500)), ("synthetic_seed", 1) });
        else
        {
            settings.Add(("data", "fashion-mnist"));
            if (o.DataFolder is not null) settings.Add(("data_folder", Path.GetFullPath(o.DataFolder)));
        }
        return ModelSpec.Of(ImageCnn.Name, settings.ToArray());
    }

    private static string Hash(string text) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16].ToLower(CultureInfo.InvariantCulture);

    /// <summary>Turns the members' reports into the study's progress callback (steps done by the slowest member).</summary>
    private sealed class Reporter(int members, Action<long, string> progress) : IProgress<ChainProgress>
    {
        private readonly long[] _steps = new long[members];
        private readonly double[] _logPosterior = new double[members];

        public void Report(ChainProgress value)
        {
            lock (_steps)
            {
                _steps[value.Member] = value.Step;
                _logPosterior[value.Member] = value.LogPosterior;
                progress(_steps.Min(), $"mean log π {_logPosterior.Average():F3} (cluster)");
            }
        }
    }
}
