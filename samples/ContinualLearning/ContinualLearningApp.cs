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
    /// <summary>Runs the sample; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var o = new SampleOptions(args);
        var part = o.String("part", "all", "fmnist | text | all");
        var outDir = o.String("out", "results/continual", "output folder (CSV, JSON, PNG, checkpoints)");
        var device = o.String("device", "cpu", "cpu or cuda[:n] (needs a CUDA TorchSharp package)");
        var seed = o.Int("seed", 1, "random seed", min: 0);
        var threads = o.Int("threads", 1, "CPU threads of TorchSharp (one is fastest for these tiny models; more only spin on a busy machine)");
        var resume = o.Flag("resume", "reuse episode checkpoints found in <out>/checkpoints");
        var tiny = o.Flag("tiny", "a seconds-long configuration (smoke tests)");
        // Split Fashion-MNIST
        var synthetic = o.Flag("synthetic", "use the synthetic Fashion-MNIST stand-in");
        var trainPerTask = o.Int("train-per-task", tiny ? 200 : 2000, "training images per task");
        var testPerTask = o.Int("test-per-task", tiny ? 200 : 2000, "test images per task");
        var hidden = o.Int("hidden", tiny ? 32 : 100, "MLP hidden width");
        var epochs = o.Int("epochs", tiny ? 1 : 5, "epochs per task");
        var fLambda = o.Double("fmnist-lambda", 100, "λ of sequential Laplace on Fashion-MNIST (1 is the exact sequential update; forgetting then matches SGD here)");
        var ekfLr = o.Double("ekf-lr", 0.1, "EKF lr (the likelihood's inverse temperature per batch)");
        var fashionFolder = o.String("fashion-mnist", "", "folder of the Fashion-MNIST IDX files (default: $POSTERIORS_FASHION_MNIST or the Debian package)");
        // Text
        var books = o.String("books", string.Join(',', TextLab.DefaultBooks), "license texts learned in sequence");
        var data = o.String("data", TextLab.DefaultDataFolder, "folder of the license texts");
        var lambdas = o.Doubles("lambdas", "0,1,100", "Laplace-as-prior λ values (0 = SGD baseline)");
        var pretrainSteps = o.Int("pretrain-steps", tiny ? 5 : 300, "base-model pre-training steps");
        var steps = o.Int("steps", tiny ? 5 : 150, "LoRA fine-tuning steps per book");
        var width = o.Int("width", tiny ? 16 : 32, "transformer width");
        var layers = o.Int("layers", tiny ? 1 : 2, "transformer blocks");
        var context = o.Int("context", tiny ? 16 : 32, "characters per training window");
        var maxChars = o.Int("max-chars", tiny ? 600 : 100_000, "characters read per text");
        if (o.Has("help")) { Console.WriteLine("ContinualLearning options:\n" + o.Help()); return 0; }
        o.EnsureAllKnown();
        if (part is not ("all" or "fmnist" or "text"))
            throw new ArgumentException($"Option --part must be fmnist, text or all; got '{part}'.");

        NativeSetup.EnsureTorchLoaded();
        torch.set_num_threads(threads);
        var dev = TextLab.ParseDevice(device);
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        if (part is "all" or "fmnist")
            RunFashionMnist(outDir, dev, seed, resume, synthetic || tiny, fashionFolder, trainPerTask, testPerTask, hidden, epochs, fLambda, ekfLr);
        if (part is "all" or "text")
            RunText(outDir, dev, seed, resume, data, books.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                lambdas, pretrainSteps, steps, new TinyTransformerConfig(0, context, width, Math.Max(1, width / 16), layers), maxChars);
        AnsiConsole.MarkupLine($"[grey]done in {clock.Elapsed.TotalSeconds:F0} s; results in {Markup.Escape(Path.GetFullPath(outDir))}[/]");
        return 0;
    }

    // ------------------------------------------------------------------ Split Fashion-MNIST

    private static void RunFashionMnist(string outDir, Device device, int seed, bool resume, bool synthetic, string folder,
        int trainPerTask, int testPerTask, int hidden, int epochs, double lambda, double ekfLr)
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
        var xs = Enumerable.Range(1, tasks.Count).Select(i => (double)i).ToArray();
        for (var m = 0; m < methods.Count; m++)
        {
            var mm = m;
            Reporting.LinePlot(Path.Combine(outDir, $"fmnist_{methods[m].Name}.png"), $"Split Fashion-MNIST, {methods[m].Name}: accuracy on each task",
                "episode (tasks learned)", "test accuracy",
                tasks.Select(t => ($"task {t.Name}", xs, xs.Select((_, e) => e >= t.Index ? accuracy[mm, e, t.Index] : double.NaN).ToArray())).ToArray());
        }
        Reporting.LinePlot(Path.Combine(outDir, "fmnist_average.png"), "Split Fashion-MNIST: mean accuracy over the tasks seen so far",
            "episode (tasks learned)", "mean test accuracy",
            methods.Select((method, m) => (method.Name, xs, xs.Select((_, e) => Enumerable.Range(0, e + 1).Average(t => accuracy[m, e, t])).ToArray())).ToArray());
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
        double[] lambdas, int pretrainSteps, int steps, TinyTransformerConfig shape, int maxChars)
    {
        if (lambdas.Any(l => l < 0)) throw new ArgumentOutOfRangeException(nameof(lambdas), string.Join(",", lambdas), "Every λ must be ≥ 0.");
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
        var xs = Enumerable.Range(1, books.Count).Select(i => (double)i).ToArray();
        for (var l = 0; l < lambdas.Length; l++)
        {
            var ll = l;
            Reporting.LinePlot(Path.Combine(outDir, $"text_lambda_{lambdas[l].ToString(System.Globalization.CultureInfo.InvariantCulture)}.png"),
                $"LoRA with Laplace-as-prior, λ = {lambdas[l]}: held-out loss per book", "episode (books learned)", "held-out loss (nats/char)",
                books.Select((b, bi) => (b.Name, xs, xs.Select((_, e) => e >= bi ? loss[ll, e, bi] : double.NaN).ToArray())).ToArray());
        }
        Reporting.LinePlot(Path.Combine(outDir, "text_earlier_books.png"), "Mean held-out loss on the books learned so far",
            "episode (books learned)", "held-out loss (nats/char)",
            lambdas.Select((lam, l) => ($"λ = {lam}", xs, xs.Select((_, e) => Enumerable.Range(0, e + 1).Average(b => loss[l, e, b])).ToArray())).ToArray());
    }
}

