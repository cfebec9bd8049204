using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Posteriors.Cli.Study;
using Posteriors.Models.Data;
using Posteriors.Native;
using Posteriors.Samples;
using Spectre.Console;

namespace Posteriors.Cli.Commands;

/// <summary>The <c>posteriors</c> command line: the study is the default command.</summary>
public static class Cli
{
    /// <summary>
    /// Parses <paramref name="args"/> and runs the chosen command; output goes to <paramref name="console"/> (default:
    /// the terminal), a bad option or path to <paramref name="error"/> (default: stderr) as one line with exit code 2.
    /// </summary>
    public static int Run(string[] args, IAnsiConsole? console = null, TextWriter? error = null)
    {
        console ??= AnsiConsole.Console;
        error ??= Console.Error;
        var root = new RootCommand(
            "Posteriors for .NET — scalable Bayesian learning on TorchSharp.\n" +
            "Without a subcommand, runs the cold-posterior study on Fashion-MNIST (the `study` command): MAP, deep ensembles, " +
            "SG-MCMC, VI and Laplace on a small CNN, over temperatures T = τ/N, with accuracy, NLL, ECE, Brier and OOD detection.");
        AddStudy(root, args, console);
        var study = new Command("study", "The cold-posterior study (the default command).");
        AddStudy(study, args, console);
        root.Subcommands.Add(study);

        var regression = new Command("regression", "MAP of a Bayesian linear regression on synthetic data (a one-second smoke check).");
        regression.SetAction(_ => { NativeSetup.EnsureTorchLoaded(); return RegressionDemo.Run(); });
        root.Subcommands.Add(regression);

        root.Subcommands.Add(LaplaceCommand.Create(console));

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
        return CommonOptions.Invoke(root, args, message => error.WriteLine(message));
    }

    private static void AddStudy(Command command, string[] args, IAnsiConsole console)
    {
        var common = new CommonOptions("results/cold-posterior",
            $"Folder with the Fashion-MNIST IDX files. Default: ${FashionMnist.EnvironmentVariable}, then {FashionMnist.DebianFolder}.", oneSeed: false);
        common.AddTo(command);
        var methodNames = string.Join(", ", MethodRegistry.All.Select(m => $"{m.Name} ({m.Description})"));
        var methods = new Option<string[]>("--methods", "-m")
        {
            Description = $"Methods to run. Known: {methodNames}. Default: {string.Join(" ", MethodRegistry.QuickDefaults)} (quick), all (--full).",
            AllowMultipleArgumentsPerToken = true,
        };
        methods.Validators.Add(r =>
        {
            foreach (var m in CommonOptions.Value<string[]>(r) ?? Array.Empty<string>())
                if (MethodRegistry.Find(m) is null)
                    r.AddError($"--methods: unknown method '{m}'. Known: {string.Join(", ", MethodRegistry.All.Select(x => x.Name))}.");
        });
        var temperatures = new Option<double[]>("--temperatures", "-t")
        {
            Description = "τ values for the tempered methods (they target p(θ|D)^(1/T) with T = τ/N; τ = 1 is the Bayes posterior, τ < 1 'cold'). Default: 0.1 1 (quick), 0.03 0.1 0.3 1 3 (--full).",
            AllowMultipleArgumentsPerToken = true,
        };
        temperatures.Validators.Add(r =>
        {
            foreach (var t in CommonOptions.Value<double[]>(r) ?? Array.Empty<double>())
                if (!(t > 0) || double.IsInfinity(t)) r.AddError($"--temperatures must be positive and finite; got {t.ToString(CultureInfo.InvariantCulture)}.");
        });
        var epochs = CommonOptions.AtLeast(new Option<int?>("--epochs", "-e") { Description = "Training epochs per run. Default: 40 (quick: the small training set is trained until MAP overfits), 10 (--full), 2 (--tiny)." }, 1);
        var full = new Option<bool>("--full")
        {
            Description = "The full study: all 60,000 training and 10,000 test images, all methods, τ ∈ {0.03, 0.1, 0.3, 1, 3}, 10 epochs, 5 members, " +
                          "the 32-64-128 CNN. Expected runtime: about 3 hours on 2 CPU cores (estimated from the measured runs: MAP 3 min, each K = 5 parallel SGHMC run 16 min); run a part with --methods/--temperatures, or use --device cuda.",
        };
        var trainSize = CommonOptions.AtLeast(new Option<int?>("--train-size") { Description = "Training images to use (random subset). Default: 3000 (quick), 60000 (--full), 512 (--tiny)." }, 1);
        var testSize = CommonOptions.AtLeast(new Option<int?>("--test-size") { Description = "Test images to evaluate on (random subset; the OOD set is their negatives). Default: 10000, the whole test set (a 2,000-image subset left differences of 0.5 points within the noise); 256 (--tiny)." }, 1);
        var batchSize = CommonOptions.AtLeast(new Option<int?>("--batch-size", "-b") { Description = "Mini-batch size. Default: 128 (64 with --tiny)." }, 1);
        var members = CommonOptions.AtLeast(new Option<int?>("--members", "-k") { Description = "Members of ensembles / parallel chains / posterior draws. Default: 5 (2 with --tiny)." }, 1);
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the labelled synthetic stand-in data even if Fashion-MNIST is installed." };
        var noInstall = new Option<bool>("--no-install") { Description = $"Never run apt-get (by default, as root, a missing data set is installed with: {FashionMnist.InstallCommand})." };
        var widths = new Option<string?>("--widths") { Description = "CNN widths conv1,conv2,dense. Default: 16,32,64 (quick), 32,64,128 (--full), 4,8,16 (--tiny)." };
        widths.Validators.Add(r =>
        {
            var text = CommonOptions.Value<string?>(r);
            if (text is not null && ParseWidths(text) is null) r.AddError($"--widths must be three positive integers like 16,32,64; got '{text}'.");
        });
        var sgdLr = CommonOptions.Positive(new Option<double?>("--sgd-lr")
        {
            Description = $"Learning rate of the momentum SGD that SGHMC reduces to at T = 0 (sets its σ and α through SghmcHyperparameters.FromSgd, docs/ALGORITHMS.md §2.6). Default: {Study.Methods.SghmcSettings.DefaultSgdLr}.",
        });
        var laplaceLayers = new Option<string>("--laplace-layers")
        {
            Description = "Layers the Laplace methods cover: last (fc2, default; there the linearised predictive is exact), dense (fc1 and fc2) or all (the convolutions too).",
            DefaultValueFactory = _ => "last",
        };
        CommonOptions.OneOf(laplaceLayers, "last", "dense", "all");
        var noiseStream = new Option<string>("--noise-stream")
        {
            Description = "Generator of the samplers' step noise: philox-xoshiro (default) or philox-box-muller (the generator of earlier releases; reproduces their runs).",
            DefaultValueFactory = _ => "philox-xoshiro",
        };
        CommonOptions.OneOf(noiseStream, "philox-xoshiro", "philox-box-muller");
        foreach (var o in new Option[] { methods, temperatures, epochs, full, trainSize, testSize, batchSize, members, synthetic, noInstall, widths, sgdLr, laplaceLayers, noiseStream })
            command.Options.Add(o);
        var cluster = ClusterOption(command);

        command.SetAction(parse =>
        {
            var c = common.Read(parse);
            var options = new StudyOptions
            {
                Methods = parse.GetValue(methods) ?? Array.Empty<string>(),
                Temperatures = parse.GetValue(temperatures) ?? Array.Empty<double>(),
                Epochs = parse.GetValue(epochs),
                Seeds = c.Seeds,
                Device = c.Device,
                Output = c.Output,
                Full = parse.GetValue(full),
                Tiny = c.Tiny,
                TrainSize = parse.GetValue(trainSize),
                TestSize = parse.GetValue(testSize),
                BatchSize = parse.GetValue(batchSize),
                Members = parse.GetValue(members),
                DataFolder = c.Data,
                Synthetic = parse.GetValue(synthetic),
                NoInstall = parse.GetValue(noInstall),
                Threads = c.Threads,
                NoPlots = c.NoPlots,
                Resume = c.Resume,
                Widths = ParseWidths(parse.GetValue(widths)),
                LaplaceLayers = parse.GetValue(laplaceLayers) ?? "last",
                SgdLr = parse.GetValue(sgdLr),
                NoiseStream = parse.GetValue(noiseStream) == "philox-box-muller" ? NoiseStream.PhiloxBoxMuller : NoiseStream.PhiloxXoshiro,
                Cluster = parse.GetValue(cluster),
            };
            return RunStudy(options, args, console);
        });
    }

    /// <summary>Checks everything that can be checked before training, then runs the study in its run folder.</summary>
    private static int RunStudy(StudyOptions options, string[] args, IAnsiConsole console)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        if (options.DataFolder is { } folder && !options.Synthetic && FashionMnist.Find(folder) is null)
            throw new UsageException($"--data: no Fashion-MNIST IDX files in '{folder}' (train-images-idx3-ubyte.gz and the other three).");
        NativeSetup.EnsureTorchLoaded();
        var device = CommonOptions.ResolveDevice(options.Device);
        if (!ClusterEnsemble.TryConnect(options, console)) return ClusterEnsemble.UnreachableExitCode;
        var run = RunFolder.Open(options.Output, options.Resume);
        var settingsPath = Path.Combine(run, StudyRunner.SettingsFile);
        var settings = options.Settings();
        if (options.Resume)
        {
            var saved = File.Exists(settingsPath)
                ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(settingsPath))!
                : throw new UsageException($"--resume: '{run}' holds no {StudyRunner.SettingsFile}; it is not a study run folder.");
            // Folders started before the choice existed ran with the first generator: resuming one needs --noise-stream philox-box-muller.
            saved.TryAdd(nameof(StudyOptions.NoiseStream), ((int)NoiseStream.PhiloxBoxMuller).ToString(System.Globalization.CultureInfo.InvariantCulture));
            var differences = settings.Keys.Union(saved.Keys).Order(StringComparer.Ordinal)
                .Where(k => !(settings.TryGetValue(k, out var a) && saved.TryGetValue(k, out var b) && a == b))
                .Select(k => $"{k} {saved.GetValueOrDefault(k, "unset")} (now {settings.GetValueOrDefault(k, "unset")})").ToArray();
            if (differences.Length > 0)
                throw new UsageException($"--resume: '{run}' was started with other settings: {string.Join("; ", differences)}. Give the options of the interrupted run.");
        }
        else AtomicFile.WriteAllText(settingsPath, JsonSerializer.Serialize(settings, new JsonSerializerOptions { WriteIndented = true }));

        // The first Ctrl-C stops at the next step with a checkpoint and a partial table; a second one ends the process.
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            if (stop.IsCancellationRequested) return;
            context.Cancel = true;
            stop.Cancel();
        });
        try
        {
            var report = StudyRunner.Run(options, console, run, device, stop.Token);
            if (!report.Interrupted) return 0;
            var resume = string.Join(" ", args.Where(a => a != "--resume").Append("--resume").Select(Quote));
            // Unwrapped, so the command can be copied whatever the console's width.
            console.Profile.Out.Writer.WriteLine($"Interrupted after {report.Results.Count} finished run(s); the partial results are in {run}. Resume with: ./scripts/run.sh {resume}");
            console.Profile.Out.Writer.Flush();
            return CommonOptions.InterruptedExitCode;
        }
        catch (DataSetException e)
        {
            console.MarkupLine($"[red]{Markup.Escape(e.Message)}[/]");
            return 3;
        }
        catch (Exception e) when (ClusterEnsemble.StoppedRun(e) is { } stopped)
        {
            var resume = string.Join(" ", args.Where(a => a != "--resume").Append("--resume").Select(Quote));
            console.MarkupLine($"[red]The cluster run stopped: {Markup.Escape(stopped.Message)}[/]");
            console.Profile.Out.Writer.WriteLine($"The members' last checkpoints are intact; once the cluster is healthy, continue with: ./scripts/run.sh {resume}");
            console.Profile.Out.Writer.Flush();
            return ClusterEnsemble.StoppedExitCode;
        }
        finally
        {
            // Spectre hides the cursor during progress; make sure the terminal gets it back whatever happened.
            if (!Console.IsOutputRedirected) Console.Write("\u001b[?25h");
        }
    }

    private static string Quote(string arg) => arg.Length > 0 && arg.All(ch => char.IsLetterOrDigit(ch) || "-_./:=,".Contains(ch)) ? arg : $"'{arg.Replace("'", "'\\''")}'";

    /// <summary>The option of a run on a cluster (see <see cref="ClusterEnsemble"/>); <c>--resume</c> is the common one.</summary>
    private static Option<string?> ClusterOption(Command command)
    {
        var cluster = new Option<string?>("--cluster")
        {
            Description = "Run the ensemble and sghmc-parallel members as grains on a Posteriors cluster whose membership is in Redis at HOST:PORT " +
                          "(./scripts/cluster.sh up N prints it). Same results as a local run when the silos use --threads torch threads.",
        };
        command.Options.Add(cluster);
        return cluster;
    }

    private static (int, int, int)? ParseWidths(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var parts = text.Split(',').Select(p => int.TryParse(p.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        return parts.Length == 3 && parts.All(p => p >= 1) ? (parts[0], parts[1], parts[2]) : null;
    }
}
