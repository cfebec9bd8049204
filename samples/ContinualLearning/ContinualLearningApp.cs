using System.CommandLine;
using System.Diagnostics;
using Posteriors.Continual;
using Posteriors.Models.Data;
using Posteriors.Models.Text;
using Posteriors.Models.Transformers;
using Posteriors.Native;
using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Trees;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>
/// Continual learning with Bayesian posteriors as priors: Split Fashion-MNIST (part "fmnist") and a character-level
/// transformer with LoRA adapters learning one license text per episode (part "text").
/// </summary>
public static class ContinualLearningApp
{
    /// <summary>Runs the sample; returns the process exit code (2: a bad option, reported on stderr as one line).</summary>
    public static int Run(string[] args)
    {
        var common = new CommonOptions("results/continual", $"Folder of the license texts. Default: {TextLab.DefaultDataFolder}.", oneSeed: true);
        var part = new Option<string>("--part") { Description = "fmnist | text | all", DefaultValueFactory = _ => "all" };
        CommonOptions.OneOf(part, "all", "fmnist", "text");
        // Split Fashion-MNIST
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the synthetic Fashion-MNIST stand-in (--tiny implies it)." };
        var trainPerTask = CommonOptions.Sized("--train-per-task", "Training images per task.", 2000, 200);
        var testPerTask = CommonOptions.Sized("--test-per-task", "Test images per task.", 2000, 200);
        var hidden = CommonOptions.Sized("--hidden", "MLP hidden width.", 100, 32);
        var epochs = CommonOptions.Sized("--epochs", "Epochs per task.", 5, 1);
        var fLambda = CommonOptions.AtLeast(new Option<double>("--fmnist-lambda")
        {
            Description = "λ of sequential Laplace on Fashion-MNIST (1 is the exact sequential update; forgetting then matches SGD here).",
            DefaultValueFactory = _ => 100,
        }, 0);
        var ekfLr = CommonOptions.Positive(new Option<double>("--ekf-lr") { Description = "EKF lr (the likelihood's inverse temperature per batch).", DefaultValueFactory = _ => 0.1 });
        var fashionFolder = new Option<string?>("--fashion-mnist") { Description = "Folder of the Fashion-MNIST IDX files. Default: $POSTERIORS_FASHION_MNIST or the Debian package." };
        fashionFolder.Validators.Add(r =>
        {
            var folder = CommonOptions.Value<string?>(r);
            if (folder is not null && FashionMnist.Find(folder) is null) r.AddError($"--fashion-mnist: no Fashion-MNIST IDX files in '{folder}'.");
        });
        // Text
        var text = new TextModelOptions("License texts learned in sequence");
        var lambdas = new Option<double[]>("--lambdas")
        {
            Description = "Laplace-as-prior λ values (0 = SGD baseline).",
            DefaultValueFactory = _ => new[] { 0.0, 1, 100 },
            AllowMultipleArgumentsPerToken = true,
        };
        lambdas.Validators.Add(r =>
        {
            if ((CommonOptions.Value<double[]>(r) ?? Array.Empty<double>()).FirstOrDefault(l => !(l >= 0) || double.IsInfinity(l), 0) is var bad && bad != 0)
                r.AddError($"--lambdas must be non-negative and finite; got {bad.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        });
        var steps = CommonOptions.Sized("--steps", "LoRA fine-tuning steps per book.", 150, 5);

        var root = new RootCommand("Continual learning with Bayesian posteriors as priors: Split Fashion-MNIST and continual LoRA on license texts.");
        common.AddTo(root);
        text.AddTo(root);
        foreach (var o in new Option[] { part, synthetic, trainPerTask, testPerTask, hidden, epochs, fLambda, ekfLr, fashionFolder, lambdas, steps })
            root.Options.Add(o);
        root.SetAction(parse =>
        {
            var c = common.Read(parse);
            int Sized(Option<int?> o, int normal, int tiny) => CommonOptions.Sized(parse, o, normal, tiny, c.Tiny);
            var which = parse.GetValue(part)!;
            var isSynthetic = parse.GetValue(synthetic) || c.Tiny;
            var texts = which is "all" or "text" ? text.Read(parse, c) : null;
            if (which is "all" or "fmnist" && !isSynthetic && FashionMnist.Find(parse.GetValue(fashionFolder)) is null)
                throw new UsageException($"Fashion-MNIST not found (--fashion-mnist, ${FashionMnist.EnvironmentVariable}, {FashionMnist.DebianFolder}); install it with: sudo {FashionMnist.InstallCommand}, or pass --synthetic.");
            NativeSetup.EnsureTorchLoaded();
            var dev = CommonOptions.ResolveDevice(c.Device);
            var outDir = RunFolder.Open(c.Output, c.Resume);
            torch.set_num_threads(c.Threads);
            var seed = c.Seeds[0];
            var clock = Stopwatch.StartNew();
            if (which is "all" or "fmnist")
                RunFashionMnist(outDir, dev, seed, c.Resume, isSynthetic, parse.GetValue(fashionFolder) ?? "",
                    Sized(trainPerTask, 2000, 200), Sized(testPerTask, 2000, 200), Sized(hidden, 100, 32), Sized(epochs, 5, 1),
                    parse.GetValue(fLambda), parse.GetValue(ekfLr), c.NoPlots);
            if (texts is not null)
                RunText(outDir, dev, seed, c.Resume, texts.DataFolder, texts.Books, parse.GetValue(lambdas)!, texts.PretrainSteps, Sized(steps, 150, 5),
                    texts.Shape, texts.MaxChars, c.NoPlots);
            AnsiConsole.MarkupLine($"[grey]done in {clock.Elapsed.TotalSeconds:F0} s; results in {Markup.Escape(Path.GetFullPath(outDir))}[/]");
            return 0;
        });
        return CommonOptions.Invoke(root, args, message => Console.Error.WriteLine(message));
    }

    // ------------------------------------------------------------------ Split Fashion-MNIST

    private static void RunFashionMnist(string outDir, Device device, int seed, bool resume, bool synthetic, string folder,
        int trainPerTask, int testPerTask, int hidden, int epochs, double lambda, double ekfLr, bool noPlots)
    {
        var (train, test, source) = LoadFashionMnist(synthetic, folder, seed);
        var tasks = SplitFashionMnist.Tasks(train, test, trainPerTask, testPerTask, device);
        var settings = new SplitFashionMnist.Settings(BatchSize: 64, Epochs: epochs, Lr: 0.05, Lambda: lambda, EkfLr: ekfLr, ViLr: 3e-3);
        var mlp = SplitFashionMnist.Mlp(784, hidden, seed, device);
        var initial = ParameterTree.FromModule(mlp).Clone();
        var methods = FashionMnistMethods.All(settings, mlp);
        AnsiConsole.MarkupLine($"[bold]Split Fashion-MNIST[/] ({Markup.Escape(source)}): 5 two-class tasks × {tasks[0].TrainCount} training images, " +
                               $"MLP 784–{hidden}–10, {epochs} epochs per task; methods: {string.Join(", ", methods.Select(m => m.Name))}");
        var accuracy = new double[methods.Count, tasks.Count, tasks.Count];
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                for (var m = 0; m < methods.Count; m++)
                {
                    var method = methods[m];
                    var bar = ctx.AddTask(method.Name, maxValue: tasks.Sum(t => method.StepsPerTask(t, settings)));
                    var g = new Generator((ulong)seed + 17);
                    method.Reset(initial);
                    for (var e = 0; e < tasks.Count; e++)
                    {
                        var checkpoint = Path.Combine(outDir, "checkpoints", "fmnist", method.Name, $"episode-{e}.state");
                        if (resume && File.Exists(checkpoint)) { method.Load(checkpoint, device); bar.Increment(method.StepsPerTask(tasks[e], settings)); }
                        else
                        {
                            method.Learn(tasks[e], g, () => bar.Increment(1));
                            method.Save(checkpoint);
                        }
                        for (var t = 0; t < tasks.Count; t++) accuracy[m, e, t] = SplitFashionMnist.Accuracy(mlp, method.PredictiveMean, tasks[t]);
                    }
                    bar.Value = bar.MaxValue;
                }
            });

        var table = new Table().Title("accuracy on each task after the last episode, and forgetting").AddColumn("method");
        foreach (var t in tasks) table.AddColumn($"task {t.Name}");
        table.AddColumns("mean", "forgetting");
        var summary = new List<object>();
        var rows = new List<IReadOnlyList<object>>();
        for (var m = 0; m < methods.Count; m++)
        {
            var final = Enumerable.Range(0, tasks.Count).Select(t => accuracy[m, tasks.Count - 1, t]).ToArray();
            // Forgetting (Chaudhry et al. 2018): mean over all but the last task of (accuracy just after learning it − final accuracy).
            var forgetting = Enumerable.Range(0, tasks.Count - 1).Average(t => accuracy[m, t, t] - accuracy[m, tasks.Count - 1, t]);
            table.AddRow(new[] { methods[m].Name }.Concat(final.Select(a => $"{a:P1}")).Concat(new[] { $"{final.Average():P1}", $"{forgetting:P1}" }).ToArray());
            summary.Add(new { method = methods[m].Name, finalAccuracy = final, meanFinalAccuracy = final.Average(), forgetting });
            for (var e = 0; e < tasks.Count; e++)
                for (var t = 0; t <= e; t++)
                    rows.Add(new object[] { methods[m].Name, e, tasks[e].Name, t, tasks[t].Name, accuracy[m, e, t] });
        }
        AnsiConsole.Write(table);
        Reporting.WriteCsv(Path.Combine(outDir, "fmnist_accuracy.csv"), new[] { "method", "episode", "episode_task", "task", "task_name", "accuracy" }, rows);
        Reporting.WriteJson(Path.Combine(outDir, "fmnist_summary.json"), new { source, trainPerTask = tasks[0].TrainCount, hidden, epochs, lambda, methods = summary });
        if (noPlots) return;
        var xs = Enumerable.Range(1, tasks.Count).Select(i => (double)i).ToArray();
        for (var m = 0; m < methods.Count; m++)
        {
            var mm = m;
            Reporting.LinePlot(Path.Combine(outDir, $"fmnist_{methods[m].Name}.png"), $"Split Fashion-MNIST, {methods[m].Name}: accuracy on each task",
                "episode (tasks learned)", "test accuracy",
                tasks.Select(t => ($"task {t.Name}", xs, xs.Select((_, e) => e >= t.Index ? accuracy[mm, e, t.Index] : double.NaN).ToArray())).ToArray(), wholeNumberTicks: true);
        }
        Reporting.LinePlot(Path.Combine(outDir, "fmnist_average.png"), "Split Fashion-MNIST: mean accuracy over the tasks seen so far",
            "episode (tasks learned)", "mean test accuracy",
            methods.Select((method, m) => (method.Name, xs, xs.Select((_, e) => Enumerable.Range(0, e + 1).Average(t => accuracy[m, e, t])).ToArray())).ToArray(),
            wholeNumberTicks: true);
    }

    private static ((Tensor, Tensor) Train, (Tensor, Tensor) Test, string Source) LoadFashionMnist(bool synthetic, string folder, int seed)
    {
        if (!synthetic)
        {
            var (train, test) = FashionMnist.Load(folder.Length == 0 ? null : folder);
            return ((train.Images, train.Labels), (test.Images, test.Labels), "Fashion-MNIST, " + train.Source);
        }
        var (strain, stest) = SyntheticImages.Generate(12_000, 4_000, seed);
        return ((strain.Images, strain.Labels), (stest.Images, stest.Labels), "synthetic stand-in for Fashion-MNIST");
    }

    // ------------------------------------------------------------------ text: LoRA with Laplace-as-prior

    private static void RunText(string outDir, Device device, int seed, bool resume, string dataFolder, string[] bookNames,
        double[] lambdas, int pretrainSteps, int steps, TinyTransformerConfig shape, int maxChars, bool noPlots)
    {
        var corpus = TextLab.Load(dataFolder, bookNames, device, maxCharacters: maxChars);
        var config = shape with { VocabularySize = corpus.Vocabulary.Size };
        const int batchSize = 16;
        manual_seed(seed);
        var model = new TinyTransformer(config);
        model.to(device);
        var g = new Generator((ulong)seed + 5);
        var books = corpus.Books;
        AnsiConsole.MarkupLine($"[bold]Continual LoRA[/]: tiny transformer (width {config.Width}, {config.Layers} blocks, context {config.ContextLength}, " +
                               $"vocabulary {config.VocabularySize}), LoRA r = {config.LoraRank}, α = {config.LoraAlpha} on q/k/v/o; " +
                               $"books: {string.Join(", ", books.Select(b => $"{b.Name} ({b.Train.shape[0]}+{b.Test.shape[0]} chars)"))}; λ ∈ {{{string.Join(", ", lambdas)}}}");
        var loss = new double[lambdas.Length, books.Count, books.Count];
        ParameterTree lora0 = null!;
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var basePath = Path.Combine(outDir, "checkpoints", "text", "base.state");
                var pre = ctx.AddTask("pre-train base", maxValue: pretrainSteps);
                if (resume && File.Exists(basePath))
                {
                    ParameterTree.FromModule(model).CopyFrom(StateFile.Load<ParameterSnapshot>(basePath, device).Parameters);
                    model.UseLoraOnly();
                }
                else
                {
                    TextLab.Pretrain(model, corpus.Pretraining, pretrainSteps, batchSize, config.ContextLength, 3e-3, g, () => pre.Increment(1));
                    StateFile.Save(basePath, new ParameterSnapshot(ParameterTree.FromModule(model)));
                }
                pre.Value = pre.MaxValue;
                lora0 = model.TrainableParameters().Clone();
                for (var l = 0; l < lambdas.Length; l++)
                {
                    var lambda = lambdas[l];
                    var bar = ctx.AddTask($"λ = {lambda}", maxValue: steps * books.Count);
                    var mean = lora0.Clone();
                    LaplacePrior? prior = null;
                    for (var e = 0; e < books.Count; e++)
                    {
                        var checkpoint = Path.Combine(outDir, "checkpoints", "text", $"lambda-{lambda}", $"episode-{e}.state");
                        if (resume && File.Exists(checkpoint)) { prior = StateFile.Load<LaplacePrior>(checkpoint, device); bar.Increment(steps); }
                        else
                        {
                            var book = books[e];
                            var n = book.Train.shape[0] - 1;
                            var logPosterior = CharLanguageModel.LogPosterior(model, n, prior is null || lambda == 0 ? null : prior.LogProb);
                            var transform = TorchOptim.Build(logPosterior, ps => optim.Adam(ps, lr: 3e-3));
                            var state = transform.Init(mean);
                            for (var s = 0; s < steps; s++)
                            {
                                using var scope = NewDisposeScope();
                                state = transform.Update(state, TextEpisodes.RandomWindows(book.Train, batchSize, config.ContextLength, g), inplace: true);
                                bar.Increment(1);
                            }
                            var fitted = state.Params.Clone();
                            // The posterior precision accumulates over episodes (sequential Laplace); λ scales it only where it acts as a prior.
                            var precision = lambda == 0 ? fitted.ZerosLike()
                                : LaplaceFit.DiagonalPrecision(model, fitted, book.Train, config.ContextLength, prior?.Precision ?? fitted.ZerosLike());
                            prior = new LaplacePrior(fitted, precision, lambda);
                            StateFile.Save(checkpoint, prior);
                        }
                        mean = prior.Mean.Clone();
                        for (var b = 0; b < books.Count; b++) loss[l, e, b] = TextLab.HeldOutLoss(model, mean, books[b].Test, config.ContextLength);
                    }
                    bar.Value = bar.MaxValue;
                }
            });

        var table = new Table().Title("held-out loss (nats/char) on each book after the last episode").AddColumn("λ");
        foreach (var b in books) table.AddColumn(b.Name);
        table.AddColumns("mean over earlier books", "forgetting");
        var rows = new List<IReadOnlyList<object>>();
        var summary = new List<object>();
        var last = books.Count - 1;
        for (var l = 0; l < lambdas.Length; l++)
        {
            var earlier = Enumerable.Range(0, last).Select(b => loss[l, last, b]).DefaultIfEmpty(double.NaN).Average();
            // Forgetting: mean over earlier books of (loss at the end − loss right after learning the book).
            var forgetting = Enumerable.Range(0, last).Select(b => loss[l, last, b] - loss[l, b, b]).DefaultIfEmpty(double.NaN).Average();
            table.AddRow(new[] { lambdas[l].ToString(System.Globalization.CultureInfo.InvariantCulture) }
                .Concat(Enumerable.Range(0, books.Count).Select(b => $"{loss[l, last, b]:F3}")).Concat(new[] { $"{earlier:F3}", $"{forgetting:+0.000;-0.000}" }).ToArray());
            summary.Add(new { lambda = lambdas[l], finalLoss = Enumerable.Range(0, books.Count).Select(b => loss[l, last, b]).ToArray(), meanEarlier = earlier, forgetting });
            for (var e = 0; e < books.Count; e++)
                for (var b = 0; b < books.Count; b++)
                    rows.Add(new object[] { lambdas[l], e, books[e].Name, b, books[b].Name, loss[l, e, b] });
        }
        AnsiConsole.Write(table);
        Reporting.WriteCsv(Path.Combine(outDir, "text_heldout_loss.csv"), new[] { "lambda", "episode", "episode_book", "book", "book_name", "heldout_loss" }, rows);
        Reporting.WriteJson(Path.Combine(outDir, "text_summary.json"), new { config, steps, pretrainSteps, books = books.Select(b => b.Name), results = summary });
        if (noPlots) return;
        var xs = Enumerable.Range(1, books.Count).Select(i => (double)i).ToArray();
        for (var l = 0; l < lambdas.Length; l++)
        {
            var ll = l;
            Reporting.LinePlot(Path.Combine(outDir, $"text_lambda_{lambdas[l].ToString(System.Globalization.CultureInfo.InvariantCulture)}.png"),
                $"LoRA with Laplace-as-prior, λ = {lambdas[l]}: held-out loss per book", "episode (books learned)", "held-out loss (nats/char)",
                books.Select((b, bi) => (b.Name, xs, xs.Select((_, e) => e >= bi ? loss[ll, e, bi] : double.NaN).ToArray())).ToArray(), wholeNumberTicks: true);
        }
        Reporting.LinePlot(Path.Combine(outDir, "text_earlier_books.png"), "Mean held-out loss on the books learned so far",
            "episode (books learned)", "held-out loss (nats/char)",
            lambdas.Select((lam, l) => ($"λ = {lam}", xs, xs.Select((_, e) => Enumerable.Range(0, e + 1).Average(b => loss[l, e, b])).ToArray())).ToArray(),
            wholeNumberTicks: true);
    }
}

