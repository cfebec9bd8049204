using System.Diagnostics;
using Posteriors.Models.Text;
using Posteriors.Models.Transformers;
using Posteriors.Native;
using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Trees;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.BayesianLora;

/// <summary>
/// Bayesian fine-tuning of the LoRA adapters of a tiny character transformer: ensembles and variational draws, and
/// the per-statement split of predictive entropy into aleatoric and epistemic parts on in- and out-of-distribution text.
/// </summary>
public static class BayesianLoraApp
{
    /// <summary>Runs the sample; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        var o = new SampleOptions(args);
        var outDir = o.String("out", "results/bayesian-lora", "output folder (CSV, JSON, PNG, checkpoints)");
        var device = o.String("device", "cpu", "cpu or cuda[:n] (needs a CUDA TorchSharp package)");
        var seed = o.Int("seed", 1, "random seed", min: 0);
        var resume = o.Flag("resume", "reuse member checkpoints found in <out>/checkpoints");
        var tiny = o.Flag("tiny", "a seconds-long configuration (smoke tests)");
        var data = o.String("data", TextLab.DefaultDataFolder, "folder of the license texts");
        var books = o.String("books", string.Join(',', TextLab.DefaultBooks), "in-distribution texts");
        var members = o.Int("members", tiny ? 2 : 4, "ensemble members K (and VI draws)");
        var pretrainSteps = o.Int("pretrain-steps", tiny ? 5 : 400, "base-model pre-training steps");
        var steps = o.Int("steps", tiny ? 5 : 300, "LoRA training steps per member");
        var width = o.Int("width", tiny ? 16 : 64, "transformer width");
        var layers = o.Int("layers", tiny ? 1 : 2, "transformer blocks");
        var context = o.Int("context", tiny ? 16 : 64, "characters per window (and per statement)");
        var maxChars = o.Int("max-chars", tiny ? 600 : 100_000, "characters read per text");
        var lr = o.Double("lr", 0.05, "SGHMC/SGD learning rate η (heavy-ball form, momentum 0.9)");
        if (o.Has("help")) { Console.WriteLine("BayesianLora options:\n" + o.Help()); return 0; }
        o.EnsureAllKnown();

        NativeSetup.EnsureTorchLoaded();
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        var dev = TextLab.ParseDevice(device);
        var clock = Stopwatch.StartNew();
        var names = books.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var corpus = TextLab.Load(data, names, dev, maxCharacters: maxChars);
        var config = new TinyTransformerConfig(corpus.Vocabulary.Size, context, width, Math.Max(1, width / 16), layers);
        var train = cat(corpus.Books.Select(b => b.Train).ToArray());
        var heldOut = cat(corpus.Books.Select(b => b.Test).ToArray());
        var n = train.shape[0] - 1;
        manual_seed(seed);
        var model = new TinyTransformer(config);
        model.to(dev);
        var g = new Generator((ulong)seed + 3);
        const int batchSize = 16;

        var methods = new List<(string Name, Func<int, ParameterTree, Action, ParameterTree> Train)>
        {
            // SGHMC at T = 0 with ε = 1 − τ, σ, α as in REFERENCE §2 is exactly heavy-ball SGD; until the runtime's SGHMC
            // lands, the deep ensemble runs as TorchSharp SGD with momentum through TorchOptim.
            ("deep ensemble (SGD, T = 0)", (k, init, onStep) =>
            {
                var transform = TorchOptim.Build(CharLanguageModel.LogPosterior(model, n, StandardNormal), ps => optim.SGD(ps, lr, momentum: 0.9));
                var state = transform.Init(init);
                var mg = new Generator((ulong)(seed * 1000 + k));
                for (var s = 0; s < steps; s++)
                {
                    using var scope = NewDisposeScope();
                    state = transform.Update(state, TextEpisodes.RandomWindows(train, batchSize, context, mg), inplace: true);
                    onStep();
                }
                return state.Params.Clone();
            }),
        };

        AnsiConsole.MarkupLine($"[bold]Bayesian LoRA[/]: tiny transformer (width {width}, {layers} blocks, context {context}, vocabulary {config.VocabularySize}), " +
                               $"LoRA r = {config.LoraRank}, α = {config.LoraAlpha}; in-distribution: {string.Join(", ", names)} ({n} training characters); " +
                               $"K = {members}; methods: {string.Join("; ", methods.Select(m => m.Name))}");
        var ensembles = new List<IReadOnlyList<ParameterTree>>();
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var basePath = Path.Combine(outDir, "checkpoints", "base.state");
                var pre = ctx.AddTask("pre-train base", maxValue: pretrainSteps);
                if (resume && File.Exists(basePath))
                {
                    ParameterTree.FromModule(model).CopyFrom(StateFile.Load<ParameterSnapshot>(basePath, dev).Parameters);
                    model.UseLoraOnly();
                }
                else
                {
                    TextLab.Pretrain(model, corpus.Pretraining, pretrainSteps, batchSize, context, 3e-3, g, () => pre.Increment(1));
                    StateFile.Save(basePath, new ParameterSnapshot(ParameterTree.FromModule(model)));
                }
                pre.Value = pre.MaxValue;
                var template = model.TrainableParameters().Clone();
                for (var m = 0; m < methods.Count; m++)
                {
                    var bar = ctx.AddTask(methods[m].Name, maxValue: steps * members);
                    var trained = new List<ParameterTree>();
                    for (var k = 0; k < members; k++)
                    {
                        var path = Path.Combine(outDir, "checkpoints", $"method-{m}", $"member-{k}.state");
                        if (resume && File.Exists(path)) { trained.Add(StateFile.Load<ParameterSnapshot>(path, dev).Parameters); bar.Increment(steps); continue; }
                        var member = methods[m].Train(k, MemberInit(template, seed, k), () => bar.Increment(1));
                        StateFile.Save(path, new ParameterSnapshot(member));
                        trained.Add(member);
                    }
                    ensembles.Add(trained);
                }
            });

        // Statements: held-out windows (in distribution), the same windows with their characters shuffled, foreign sentences.
        var idWindows = TextEpisodes.AllWindows(heldOut, context);
        var sets = new (string Name, Tensor Inputs)[]
        {
            ("held-out license text", idWindows.narrow(1, 0, context)),
            ("shuffled characters", OutOfDistribution.Shuffled(idWindows.narrow(1, 0, context), new Generator((ulong)seed + 11))),
            ("foreign-language sentences", stack(OutOfDistribution.Foreign.Select(s => corpus.Vocabulary.Encode(s[..Math.Min(context, s.Length)].PadRight(context), dev)).ToArray())),
        };
        var table = new Table().Title("per-statement predictive entropy (nats/char), means; AUROC of epistemic uncertainty for in- vs out-of-distribution")
            .AddColumns("method", "statements", "total", "aleatoric", "epistemic", "AUROC epistemic", "AUROC total");
        var rows = new List<IReadOnlyList<object>>();
        var summary = new List<object>();
        for (var m = 0; m < methods.Count; m++)
        {
            var results = sets.Select(s => Uncertainty.Split(CharLanguageModel.MemberProbabilities(model, ensembles[m], s.Inputs))).ToArray();
            var ensembleNll = EnsembleNll(model, ensembles[m], idWindows);
            for (var si = 0; si < sets.Length; si++)
            {
                var r = results[si];
                var aurocE = si == 0 ? double.NaN : Ranking.Auroc(results[0].Epistemic, r.Epistemic);
                var aurocT = si == 0 ? double.NaN : Ranking.Auroc(results[0].Total, r.Total);
                table.AddRow(si == 0 ? Markup.Escape(methods[m].Name) : "", Markup.Escape(sets[si].Name), $"{r.Total.Average():F3}", $"{r.Aleatoric.Average():F3}",
                    $"{r.Epistemic.Average():F4}", si == 0 ? "—" : $"{aurocE:F3}", si == 0 ? "—" : $"{aurocT:F3}");
                summary.Add(new { method = methods[m].Name, set = sets[si].Name, statements = r.Total.Length, total = r.Total.Average(), aleatoric = r.Aleatoric.Average(),
                    epistemic = r.Epistemic.Average(), aurocEpistemic = aurocE, aurocTotal = aurocT, heldOutNll = ensembleNll });
                for (var i = 0; i < r.Total.Length; i++) rows.Add(new object[] { methods[m].Name, sets[si].Name, i, r.Total[i], r.Aleatoric[i], r.Epistemic[i] });
            }
            Reporting.LinePlot(Path.Combine(outDir, $"epistemic_method{m}.png"), $"{methods[m].Name}: epistemic uncertainty per statement (sorted)",
                "quantile of statements", "epistemic (nats/char)",
                sets.Select((s, si) =>
                {
                    var sorted = results[si].Epistemic.Order().ToArray();
                    return (s.Name, sorted.Select((_, i) => (i + 0.5) / sorted.Length).ToArray(), sorted);
                }).ToArray());
            AnsiConsole.MarkupLine($"{Markup.Escape(methods[m].Name)}: ensemble held-out NLL {ensembleNll:F3} nats/char");
        }
        AnsiConsole.Write(table);
        Reporting.WriteCsv(Path.Combine(outDir, "statements.csv"), new[] { "method", "set", "statement", "total", "aleatoric", "epistemic" }, rows);
        Reporting.WriteJson(Path.Combine(outDir, "summary.json"), new { config, members, steps, pretrainSteps, lr, results = summary });
        AnsiConsole.MarkupLine($"[grey]done in {clock.Elapsed.TotalSeconds:F0} s; results in {Markup.Escape(Path.GetFullPath(outDir))}[/]");
        return 0;
    }

    private static Tensor StandardNormal(ParameterTree p) => DiagNormal.LogProb(p, 0, 1, normalize: false);

    /// <summary>A member's own start: A redrawn from its own seed, B = 0 (so every member starts at the pre-trained model).</summary>
    private static ParameterTree MemberInit(ParameterTree template, int seed, int k)
    {
        var g = new Generator((ulong)(seed * 7919 + k + 1));
        return template.Map((name, t) => name.EndsWith(".lora_A", StringComparison.Ordinal)
            ? ((rand(t.shape, generator: g) * 2 - 1) / Math.Sqrt(t.shape[1])).to(t.dtype, t.device)
            : zeros_like(t));
    }

    /// <summary>Negative log of the members' averaged next-character probability, per held-out character.</summary>
    private static double EnsembleNll(TinyTransformer model, IReadOnlyList<ParameterTree> members, Tensor windows)
    {
        using var scope = NewDisposeScope();
        var t = windows.shape[1] - 1;
        var probs = CharLanguageModel.MemberProbabilities(model, members, windows.narrow(1, 0, t)).mean(new long[] { 0 });
        return -probs.gather(-1, windows.narrow(1, 1, t).unsqueeze(-1)).clamp_min(1e-12).log().mean().item<float>();
    }
}

