using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Posteriors.Metrics;
using Posteriors.Samples;
using Spectre.Console;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>What a study produced; <see cref="Interrupted"/> when Ctrl-C stopped it (the results are the finished runs).</summary>
public sealed record StudyReport(IReadOnlyList<StudyResult> Results, IReadOnlyList<SummaryRow> Summary, IReadOnlyList<string> Files, bool Synthetic,
    bool Interrupted = false);

/// <summary>One finished run as kept in the run folder: its metrics and its reliability bins.</summary>
public sealed record FinishedRun(StudyResult Result, IReadOnlyList<ReliabilityBin> Reliability);

/// <summary>
/// The cold-posterior study: every method × τ × seed on the CNN, then tables, files and plots. Each finished run is
/// kept in the run folder (<c>runs/</c>), each unfinished one checkpoints every epoch (<c>checkpoints/</c>), so a
/// stopped study continues where it stopped.
/// </summary>
public static class StudyRunner
{
    /// <summary>The settings a run folder was started with (compared on <c>--resume</c>).</summary>
    public const string SettingsFile = "study.json";

    private static readonly JsonSerializerOptions RunJson = new()
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Runs the study with <paramref name="options"/> in the run folder <paramref name="folder"/>, writing to <paramref name="console"/>.</summary>
    /// <param name="options">The study's options.</param>
    /// <param name="console">Where the progress and the table go.</param>
    /// <param name="folder">The run folder: finished runs found there are read back, an unfinished run continues from its checkpoint.</param>
    /// <param name="device">Where tensors live.</param>
    /// <param name="stop">Stops the study at the next training step (after a checkpoint) or between runs.</param>
    public static StudyReport Run(StudyOptions options, IAnsiConsole console, string folder, Device device, CancellationToken stop = default)
    {
        options.Validate();
        options = options.Resolved();
        options.Validate();
        set_num_threads(options.Threads);
        var clock = Stopwatch.StartNew();

        var (fullTrain, fullTest) = StudyData.Load(options, console);
        var train = fullTrain.Subset(options.TrainSize!.Value, seed: 11);
        var test = fullTest.Subset(options.TestSize!.Value, seed: 12);
        var ood = StudyData.OutOfDistribution(test);
        var context = new StudyContext(options, train, test, ood, device)
        {
            CheckpointFolder = Path.Combine(folder, "checkpoints"),
            Stop = stop,
        };
        var methods = options.Methods.Select(m => MethodRegistry.Find(m)!).ToArray();
        var runs = (from m in methods
                    from tau in m.Tempered ? options.Temperatures.Select(t => (double?)t) : new double?[] { null }
                    from seed in options.Seeds
                    select (Method: m, Tau: tau, Seed: seed)).ToArray();

        console.Write(new Rule("[bold]Cold-posterior study on Fashion-MNIST[/]").LeftJustified());
        console.MarkupLine($"data: {Markup.Escape(train.Source)}{(train.IsSynthetic ? " [bold yellow](SYNTHETIC)[/]" : "")}");
        console.MarkupLine($"train {train.Count:N0}, test {test.Count:N0}, OOD {ood.Count:N0} ({Markup.Escape(ood.Source)}); " +
                           $"CNN {context.Widths.C1}-{context.Widths.C2}-{context.Widths.Hidden} ({context.Posterior.InitialParameters().NumberOfElements:N0} parameters), " +
                           $"N(0, {Models.SmallCnn.DefaultPriorSd}²) prior");
        console.MarkupLine($"{runs.Length} runs: {string.Join(", ", methods.Select(m => m.Name))}; τ ∈ {{{string.Join(", ", options.Temperatures)}}}; " +
                           $"{options.Epochs} epochs × {context.StepsPerEpoch} steps, batch {options.BatchSize}; {options.Threads} threads on {device}; " +
                           $"{(options.Tiny ? "tiny" : options.Full ? "full" : "quick")} mode; run folder {Markup.Escape(folder)}");

        var earlier = runs.Count(r => File.Exists(Path.Combine(folder, "runs", RunKey(r.Method.Name, r.Tau, r.Seed) + ".json")));
        if (options.Resume)
            console.MarkupLine($"resuming: {earlier} of {runs.Length} runs finished earlier (read back from {Markup.Escape(Path.Combine(folder, "runs"))}); an unfinished run continues from its last checkpoint");
        var results = new List<StudyResult>();
        var reliability = new Dictionary<string, IReadOnlyList<ReliabilityBin>>();
        var interrupted = false;
        var totalSteps = runs.Sum(r => Math.Max(1, r.Method.Steps(context)));
        console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                // Counted in training steps, so the remaining time comes from the measured speed of the runs so far.
                var overall = ctx.AddTask("[bold]all runs[/]", maxValue: totalSteps);
                long before = 0;
                foreach (var (method, tau, seed) in runs)
                {
                    var steps = Math.Max(1, method.Steps(context));
                    var label = Markup.Escape(tau is { } t ? $"{method.Name} τ={t:G3} seed {seed}" : $"{method.Name} seed {seed}");
                    var task = ctx.AddTask(label, maxValue: steps);
                    var kept = Path.Combine(folder, "runs", RunKey(method.Name, tau, seed) + ".json");
                    FinishedRun finished;
                    if (File.Exists(kept))
                    {
                        finished = JsonSerializer.Deserialize<FinishedRun>(File.ReadAllText(kept), RunJson)!;
                        task.Description = $"{label}  [grey](finished earlier)[/]";
                    }
                    else
                    {
                        if (stop.IsCancellationRequested) { interrupted = true; break; }
                        context.RunKey = RunKey(method.Name, tau, seed);
                        var watch = Stopwatch.StartNew();
                        try
                        {
                            using (NewDisposeScope())
                            {
                                var output = method.Run(context, tau, seed, (done, status) =>
                                {
                                    task.Value = done;
                                    overall.Value = before + Math.Min(done, steps);
                                    task.Description = $"{label}  {Markup.Escape(status)}";
                                });
                                var (result, bins) = StudyResult.From(method.Name, tau, seed, output, context.Test.Labels, watch.Elapsed.TotalSeconds);
                                finished = new FinishedRun(result, bins);
                            }
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested)
                        {
                            task.Description = $"{label}  [yellow]stopped at a checkpoint[/]";
                            interrupted = true;
                            break;
                        }
                        AtomicFile.WriteAllText(kept, JsonSerializer.Serialize(finished, RunJson));
                    }
                    results.Add(finished.Result);
                    if (seed == options.Seeds[0]) reliability[finished.Result.Label] = finished.Reliability;
                    // Written after every run, so a long study that is stopped early still leaves its finished rows.
                    Report.WriteCsv(folder, results);
                    before += steps;
                    overall.Value = before;
                    task.Value = task.MaxValue;
                    task.Description = $"{label}  [green]acc {100 * finished.Result.Accuracy:F1}% NLL {finished.Result.Nll:F3}[/]";
                    task.StopTask();
                }
            });

        var files = new List<string>();
        var summary = Report.Summarize(results);
        if (summary.Count > 0) Report.WriteTable(console, summary);
        files.Add(Report.WriteCsv(folder, results));
        if (!interrupted)
        {
            files.Add(Report.WriteJson(folder, options, train.Source + (train.IsSynthetic ? " (SYNTHETIC)" : ""), results, summary, reliability));
            // The plots always show the CSV's runs: none are left from an earlier pass over this folder.
            foreach (var png in Report.PlotFiles) File.Delete(Path.Combine(folder, png));
            if (!options.NoPlots) files.AddRange(Report.WritePlots(folder, summary, reliability));

            var winners = Report.BeatMap(summary);
            if (winners is not null)
            {
                var map = summary.First(r => r.Method == "map");
                console.MarkupLine(winners.Count > 0
                    ? $"[green]Beats MAP on NLL and ECE at equal or better accuracy:[/] {Markup.Escape(string.Join(", ", winners.Select(w => $"{w.Label} (NLL {w.Nll:F4} vs {map.Nll:F4}, ECE {100 * w.Ece:F2}% vs {100 * map.Ece:F2}%, acc {100 * w.Accuracy:F2}% vs {100 * map.Accuracy:F2}%)")))}"
                    : $"[yellow]No method beat MAP (NLL {map.Nll:F4}, ECE {100 * map.Ece:F2}%, acc {100 * map.Accuracy:F2}%) on NLL and ECE at equal or better accuracy in this run.[/]");
            }
        }
        if (train.IsSynthetic) console.MarkupLine("[bold yellow]These numbers come from the SYNTHETIC stand-in, not Fashion-MNIST.[/]");
        console.MarkupLine($"wrote {Markup.Escape(string.Join(", ", files))}");
        console.MarkupLine($"total time {clock.Elapsed.TotalMinutes:F1} min");
        return new StudyReport(results, summary, files, train.IsSynthetic, interrupted);
    }

    /// <summary>The file-name key of one run: <c>map-seed0</c>, <c>sghmc-parallel-tau0.1-seed0</c>.</summary>
    public static string RunKey(string method, double? tau, int seed) =>
        tau is { } t ? $"{method}-tau{t.ToString("R", CultureInfo.InvariantCulture)}-seed{seed}" : $"{method}-seed{seed}";
}
