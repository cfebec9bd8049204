using System.CommandLine;
using System.Globalization;
using Posteriors.Cli.Study;
using Posteriors.Models.Data;
using Posteriors.Native;
using Spectre.Console;

namespace Posteriors.Cli.Commands;

/// <summary>The <c>posteriors</c> command line: the study is the default command.</summary>
public static class Cli
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen command; output goes to <paramref name="console"/> (default: the terminal).</summary>
    public static int Run(string[] args, IAnsiConsole? console = null)
    {
        console ??= AnsiConsole.Console;
        var root = new RootCommand(
            "Posteriors for .NET — scalable Bayesian learning on TorchSharp.\n" +
            "Without a subcommand, runs the cold-posterior study on Fashion-MNIST (the `study` command): MAP, deep ensembles, " +
            "SG-MCMC, VI and Laplace on a small CNN, over temperatures T = τ/N, with accuracy, NLL, ECE, Brier and OOD detection.");
        AddStudy(root, console);
        var study = new Command("study", "The cold-posterior study (the default command).");
        AddStudy(study, console);
        root.Subcommands.Add(study);

        var regression = new Command("regression", "MAP of a Bayesian linear regression on synthetic data (a one-second smoke check).");
        regression.SetAction(_ => { NativeSetup.EnsureTorchLoaded(); return RegressionDemo.Run(); });
        root.Subcommands.Add(regression);

        var data = new Command("data", $"Shows where Fashion-MNIST is found, or how to install it ({FashionMnist.InstallCommand}).");
        data.SetAction(_ =>
        {
            var found = FashionMnist.Find();
            if (found is null)
            {
                console.MarkupLine($"[yellow]Fashion-MNIST not found[/] (looked in ${FashionMnist.EnvironmentVariable} and {FashionMnist.DebianFolder}). " +
                                   $"Install: [bold]sudo {Markup.Escape(FashionMnist.InstallCommand)}[/]");
                return 1;
            }
            NativeSetup.EnsureTorchLoaded();
            var (train, test) = FashionMnist.Load(found);
            console.MarkupLine($"Fashion-MNIST in {Markup.Escape(found)}: {train.Count:N0} training and {test.Count:N0} test images, checked.");
            return 0;
        });
        root.Subcommands.Add(data);
        return root.Parse(args).Invoke();
    }

    private static void AddStudy(Command command, IAnsiConsole console)
    {
        var methodNames = string.Join(", ", MethodRegistry.All.Select(m => $"{m.Name} ({m.Description})"));
        var methods = new Option<string[]>("--methods", "-m")
        {
            Description = $"Methods to run. Known: {methodNames}. Default: {string.Join(" ", MethodRegistry.QuickDefaults)} (quick), all (--full).",
            AllowMultipleArgumentsPerToken = true,
        };
        var temperatures = new Option<double[]>("--temperatures", "-t")
        {
            Description = "τ values for the tempered methods (they target p(θ|D)^(1/T) with T = τ/N; τ = 1 is the Bayes posterior, τ < 1 'cold'). Default: 0.1 1 (quick), 0.03 0.1 0.3 1 3 (--full).",
            AllowMultipleArgumentsPerToken = true,
        };
        var epochs = new Option<int>("--epochs", "-e") { Description = "Training epochs per run. Default: 40 (quick: the small training set is trained until MAP overfits), 10 (--full)." };
        var seeds = new Option<int[]>("--seeds", "-s")
        {
            Description = "Seeds; every run is repeated per seed and the table shows mean ± sd. Default: 0.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => new[] { 0 },
        };
        var device = new Option<string>("--device", "-d") { Description = "Torch device: cpu, cuda, cuda:1 (needs a CUDA TorchSharp package).", DefaultValueFactory = _ => "cpu" };
        var output = new Option<string>("--output", "-o") { Description = "Folder for results.csv, results.json and the PNG plots.", DefaultValueFactory = _ => "results/cold-posterior" };
        var full = new Option<bool>("--full")
        {
            Description = "The full study: all 60,000 training and 10,000 test images, all methods, τ ∈ {0.03, 0.1, 0.3, 1, 3}, 10 epochs, 5 members, " +
                          "the 32-64-128 CNN. Expected runtime: about 3 hours on 2 CPU cores (estimated from the measured runs: MAP 3 min, each K = 5 parallel SGHMC run 16 min); run a part with --methods/--temperatures, or use --device cuda.",
        };
        var trainSize = new Option<int>("--train-size") { Description = "Training images to use (random subset). Default: 3000 (quick), 60000 (--full)." };
        var testSize = new Option<int>("--test-size") { Description = "Test images to evaluate on (random subset; the OOD set is their negatives). Default: 10000, the whole test set (a 2,000-image subset left differences of 0.5 points within the noise)." };
        var batchSize = new Option<int>("--batch-size", "-b") { Description = "Mini-batch size.", DefaultValueFactory = _ => 128 };
        var members = new Option<int>("--members", "-k") { Description = "Members of ensembles / parallel chains / posterior draws. Default: 5." };
        var dataFolder = new Option<string?>("--data") { Description = $"Folder with the Fashion-MNIST IDX files. Default: ${FashionMnist.EnvironmentVariable}, then {FashionMnist.DebianFolder}." };
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the labelled synthetic stand-in data even if Fashion-MNIST is installed." };
        var noInstall = new Option<bool>("--no-install") { Description = $"Never run apt-get (by default, as root, a missing data set is installed with: {FashionMnist.InstallCommand})." };
        var threads = new Option<int>("--threads") { Description = "Torch CPU threads. Default: the number of cores." };
        var noPlots = new Option<bool>("--no-plots") { Description = "Skip the PNG plots." };
        var widths = new Option<string?>("--widths") { Description = "CNN widths conv1,conv2,dense. Default: 16,32,64 (quick), 32,64,128 (--full)." };
        var sgdLr = new Option<double>("--sgd-lr")
        {
            Description = $"Learning rate of the momentum SGD that SGHMC reduces to at T = 0 (sets its σ and α, REFERENCE §2). Default: {Study.Methods.SghmcSettings.DefaultSgdLr}.",
        };
        var laplaceLayers = new Option<string>("--laplace-layers")
        {
            Description = "Layers the Laplace methods cover: last (fc2, default; there the linearised predictive is exact) or dense (fc1 and fc2).",
            DefaultValueFactory = _ => "last",
        };
        foreach (var o in new Option[] { laplaceLayers, methods, temperatures, epochs, seeds, device, output, full, trainSize, testSize, batchSize, members, dataFolder, synthetic, noInstall, threads, noPlots, widths, sgdLr })
            command.Options.Add(o);
        var (cluster, resume) = ClusterOptions(command);

        command.SetAction(parse =>
        {
            StudyOptions options;
            try
            {
                options = new StudyOptions
                {
                    Methods = parse.GetValue(methods) ?? Array.Empty<string>(),
                    Temperatures = parse.GetValue(temperatures) ?? Array.Empty<double>(),
                    Epochs = parse.GetValue(epochs),
                    Seeds = parse.GetValue(seeds) ?? new[] { 0 },
                    Device = parse.GetValue(device) ?? "cpu",
                    Output = parse.GetValue(output) ?? "results/cold-posterior",
                    Full = parse.GetValue(full),
                    TrainSize = parse.GetValue(trainSize),
                    TestSize = parse.GetValue(testSize),
                    BatchSize = parse.GetValue(batchSize),
                    Members = parse.GetValue(members),
                    DataFolder = parse.GetValue(dataFolder),
                    Synthetic = parse.GetValue(synthetic),
                    NoInstall = parse.GetValue(noInstall),
                    Threads = parse.GetValue(threads),
                    NoPlots = parse.GetValue(noPlots),
                    Widths = ParseWidths(parse.GetValue(widths)),
                    LaplaceLayers = parse.GetValue(laplaceLayers) ?? "last",
                    SgdLr = parse.GetValue(sgdLr),
                    Cluster = parse.GetValue(cluster),
                    Resume = parse.GetValue(resume),
                };
                options.Validate();
            }
            catch (ArgumentException e)
            {
                console.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
                return 2;
            }
            NativeSetup.EnsureTorchLoaded();
            if (!ClusterEnsemble.TryConnect(options, console)) return 4;
            try
            {
                StudyRunner.Run(options, console);
                return 0;
            }
            catch (DataSetException e)
            {
                console.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
                return 3;
            }
        });
    }

    /// <summary>The options of a run on a cluster (see <see cref="ClusterEnsemble"/>).</summary>
    private static (Option<string?> Cluster, Option<bool> Resume) ClusterOptions(Command command)
    {
        var cluster = new Option<string?>("--cluster")
        {
            Description = "Run the ensemble and sghmc-parallel members as grains on a Posteriors cluster whose membership is in Redis at HOST:PORT " +
                          "(./scripts/cluster.sh up N prints it). Same results as a local run when the silos use --threads torch threads.",
        };
        var resume = new Option<bool>("--resume") { Description = "With --cluster: continue an interrupted run's members from their checkpoints." };
        command.Options.Add(cluster);
        command.Options.Add(resume);
        return (cluster, resume);
    }

    private static (int, int, int)? ParseWidths(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var parts = text.Split(',').Select(p => int.TryParse(p.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        if (parts.Length != 3 || parts.Any(p => p < 1))
            throw new ArgumentException($"--widths must be three positive integers like 16,32,64; got '{text}'.");
        return (parts[0], parts[1], parts[2]);
    }
}
