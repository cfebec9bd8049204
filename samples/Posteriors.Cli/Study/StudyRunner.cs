using System.Diagnostics;
using Posteriors.Metrics;
using Spectre.Console;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>What a finished study produced.</summary>
public sealed record StudyReport(IReadOnlyList<StudyResult> Results, IReadOnlyList<SummaryRow> Summary, IReadOnlyList<string> Files, bool Synthetic);

/// <summary>The cold-posterior study: every method × τ × seed on the CNN, then tables, files and plots.</summary>
public static class StudyRunner
{
    /// <summary>Runs the study with <paramref name="options"/>, writing to <paramref name="console"/>.</summary>
    public static StudyReport Run(StudyOptions options, IAnsiConsole console)
    {
        options.Validate();
        options = options.Resolved();
        options.Validate();
        set_num_threads(options.Threads);
        var device = new Device(options.Device);
        var clock = Stopwatch.StartNew();

        var (fullTrain, fullTest) = StudyData.Load(options, console);
        var train = fullTrain.Subset(options.TrainSize, seed: 11);
        var test = fullTest.Subset(options.TestSize, seed: 12);
        var ood = StudyData.OutOfDistribution(test);
        var context = new StudyContext(options, train, test, ood, device);
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
                           $"{options.Epochs} epochs × {context.StepsPerEpoch} steps, batch {options.BatchSize}; {options.Threads} threads on {device}; {(options.Full ? "full" : "quick")} mode");

        var results = new List<StudyResult>();
        var reliability = new Dictionary<string, IReadOnlyList<ReliabilityBin>>();
        console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var overall = ctx.AddTask("[bold]all runs[/]", maxValue: runs.Length);
                foreach (var (method, tau, seed) in runs)
                {
                    var label = Markup.Escape(tau is { } t ? $"{method.Name} τ={t:G3} seed {seed}" : $"{method.Name} seed {seed}");
                    var task = ctx.AddTask(label, maxValue: Math.Max(1, method.Steps(context)));
                    var watch = Stopwatch.StartNew();
                    MethodOutput output;
                    using (NewDisposeScope())
                    {
                        output = method.Run(context, tau, seed, (done, status) =>
                        {
                            task.Value = done;
                            task.Description = $"{label}  {Markup.Escape(status)}";
                        });
                        var (result, bins) = StudyResult.From(method.Name, tau, seed, output, context.Test.Labels, watch.Elapsed.TotalSeconds);
                        results.Add(result);
                        if (seed == options.Seeds[0]) reliability[result.Label] = bins;
                    }
                    // Written after every run, so a long study that is stopped early still leaves its finished rows.
                    Directory.CreateDirectory(options.Output);
                    Report.WriteCsv(options.Output, results);
                    task.Value = task.MaxValue;
                    task.Description = $"{label}  [green]acc {100 * results[^1].Accuracy:F1}% NLL {results[^1].Nll:F3}[/]";
                    task.StopTask();
                    overall.Increment(1);
                }
            });

        var summary = Report.Summarize(results);
        console.Write(Report.Table(summary));
        Directory.CreateDirectory(options.Output);
        var files = new List<string>
        {
            Report.WriteCsv(options.Output, results),
            Report.WriteJson(options.Output, options, train.Source + (train.IsSynthetic ? " (SYNTHETIC)" : ""), results, summary, reliability),
        };
        if (!options.NoPlots) files.AddRange(Report.WritePlots(options.Output, summary, reliability));

        var winners = Report.BeatMap(summary);
        if (winners is not null)
        {
            var map = summary.First(r => r.Method == "map");
            console.MarkupLine(winners.Count > 0
                ? $"[green]Beats MAP on NLL and ECE at equal or better accuracy:[/] {Markup.Escape(string.Join(", ", winners.Select(w => $"{w.Label} (NLL {w.Nll:F4} vs {map.Nll:F4}, ECE {100 * w.Ece:F2}% vs {100 * map.Ece:F2}%, acc {100 * w.Accuracy:F2}% vs {100 * map.Accuracy:F2}%)")))}"
                : $"[yellow]No method beat MAP (NLL {map.Nll:F4}, ECE {100 * map.Ece:F2}%, acc {100 * map.Accuracy:F2}%) on NLL and ECE at equal or better accuracy in this run.[/]");
        }
        if (train.IsSynthetic) console.MarkupLine("[bold yellow]These numbers come from the SYNTHETIC stand-in, not Fashion-MNIST.[/]");
        console.MarkupLine($"wrote {Markup.Escape(string.Join(", ", files))}");
        console.MarkupLine($"total time {clock.Elapsed.TotalMinutes:F1} min");
        return new StudyReport(results, summary, files, train.IsSynthetic);
    }
}
