using System.CommandLine;
using Posteriors.Optim;
using System.Diagnostics;
using Posteriors.Models.Text;
using Posteriors.Models.Transformers;
using Posteriors.Ensembles;
using Posteriors.Metrics;
using Posteriors.Native;
using Posteriors.Sgmcmc;
using Posteriors.Vi;
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
    /// <summary>Runs the sample; returns the process exit code (2: a bad option, reported on stderr as one line).</summary>
    public static int Run(string[] args)
    {
        var common = new CommonOptions("results/bayesian-lora", $"Folder of the license texts. Default: {TextLab.DefaultDataFolder}.", oneSeed: true);
        var text = new TextModelOptions("In-distribution texts");
        var members = CommonOptions.Sized("--members", "Ensemble members K (and VI draws).", 4, 2);
        members.Aliases.Add("-k");
        var steps = CommonOptions.Sized("--steps", "LoRA training steps per member.", 100, 5);
        var lr = CommonOptions.Positive(new Option<double>("--lr") { Description = "Learning rate η of the SGD the SGHMC members reduce to at T = 0 (SghmcHyperparameters.FromSgd).", DefaultValueFactory = _ => 0.05 });
        var momentum = new Option<double>("--momentum") { Description = "Momentum μ of that SGD, in [0, 1).", DefaultValueFactory = _ => 0.9 };
        momentum.Validators.Add(r =>
        {
            var m = CommonOptions.Value<double>(r);
            if (!(m >= 0 && m < 1)) r.AddError($"--momentum must be in [0, 1); got {m.ToString(System.Globalization.CultureInfo.InvariantCulture)}.");
        });
        var viLr = CommonOptions.Positive(new Option<double>("--vi-lr") { Description = "Adam learning rate of diagonal VI.", DefaultValueFactory = _ => 1e-2 });

        var root = new RootCommand("Bayesian LoRA: ensembles and variational draws of the adapters of a tiny character transformer, with the aleatoric/epistemic split of predictive entropy.");
        common.AddTo(root);
        text.AddTo(root);
        foreach (var o in new Option[] { members, steps, lr, momentum, viLr })
            root.Options.Add(o);
        root.SetAction(parse =>
        {
            var c = common.Read(parse);
            int Sized(Option<int?> o, int normal, int tiny) => CommonOptions.Sized(parse, o, normal, tiny, c.Tiny);
            var texts = text.Read(parse, c);
            NativeSetup.EnsureTorchLoaded();
            var dev = CommonOptions.ResolveDevice(c.Device);
            var outDir = RunFolder.Open(c.Output, c.Resume);
            torch.set_num_threads(c.Threads);
            return Run(outDir, dev, c.Seeds[0], c.Resume, c.NoPlots, texts, Sized(members, 4, 2), Sized(steps, 100, 5),
                parse.GetValue(lr), parse.GetValue(momentum), parse.GetValue(viLr));
        });
        return CommonOptions.Invoke(root, args, message => Console.Error.WriteLine(message));
    }

    private static int Run(string outDir, Device dev, int seed, bool resume, bool noPlots, TextSettings texts, int members, int steps,
        double lr, double momentum, double viLr)
    {
        var clock = Stopwatch.StartNew();
        var (names, pretrainSteps) = (texts.Books, texts.PretrainSteps);
        var corpus = TextLab.Load(texts.DataFolder, names, dev, maxCharacters: texts.MaxChars);
        var config = texts.Shape with { VocabularySize = corpus.Vocabulary.Size };
        var (context, width, layers) = (config.ContextLength, config.Width, config.Layers);
        var train = cat(corpus.Books.Select(b => b.Train).ToArray());
        var heldOut = cat(corpus.Books.Select(b => b.Test).ToArray());
        var n = train.shape[0] - 1;
        manual_seed(seed);
        var model = new TinyTransformer(config);
        model.to(dev);
        var g = new Generator((ulong)seed + 3);
        const int batchSize = 16;

        // The SGHMC whose T = 0 limit is torch SGD(η, μ).
        var (epsilon, alpha, sigma) = SghmcHyperparameters.FromSgd(lr, momentum);
        LogPosterior<Tensor> perMember = CharLanguageModel.LogPosterior(model, n, StandardNormal);
        var methods = new List<(string Name, string File, Func<ParameterTree, Action, string, IReadOnlyList<ParameterTree>> Train)>
        {
            ("deep ensemble (SGHMC at T = 0)", "deep-ensemble", (template, onStep, checkpoint) =>
                RunEnsemble(Ensemble.Deep(perMember, epsilon, alpha, sigma), template, members, seed, steps, train, batchSize, context, onStep, checkpoint, resume, dev)),
            ("unbiased ensemble (SGHMC at T = 1/N)", "unbiased-ensemble", (template, onStep, checkpoint) =>
                RunEnsemble(Ensemble.Unbiased(perMember, n, epsilon, alpha, sigma), template, members, seed, steps, train, batchSize, context, onStep, checkpoint, resume, dev)),
            ("diagonal VI", "diagonal-vi", (template, onStep, checkpoint) =>
            {
                // T = 1/N: the log posterior is batch-normalised (docs/ALGORITHMS.md §1), so this targets the Bayesian posterior.
                var vi = DiagVi.Build(perMember, Optimizer.Adam(lr: viLr), temperature: 1.0 / n, initLogSd: -3);
                DiagViState state;
                if (resume && File.Exists(checkpoint)) state = StateFile.Load<DiagViState>(checkpoint, dev);
                else
                {
                    state = vi.Init(MemberInit(template, seed, 0), seed);
                    var vg = new Generator((ulong)seed * 31 + 7);
                    for (var s = 0; s < steps * members; s++)
                    {
                        using var scope = NewDisposeScope();
                        state = vi.Update(state, TextEpisodes.RandomWindows(train, batchSize, context, vg), inplace: true);
                        onStep();
                    }
                    StateFile.Save(checkpoint, state);
                }
                // K draws from q (same budget of gradient evaluations as the ensembles: K × steps).
                return ParallelChains.Unstack(DiagVi.Sample(state, members, seed)).Select(m => m.Clone()).ToArray();
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
                    var checkpoint = Path.Combine(outDir, "checkpoints", $"method-{m}.state");
                    ensembles.Add(methods[m].Train(template, () => bar.Increment(1), checkpoint));
                    bar.Value = bar.MaxValue;
                }
            });

        // Statements: held-out windows (in distribution), the same windows with their characters shuffled, foreign sentences.
        var idWindows = TextEpisodes.AllWindows(heldOut, context);
        var sets = new (string Name, Tensor Inputs)[]
        {
            ("held-out (ID)", idWindows.narrow(1, 0, context)),
            ("shuffled (OOD)", OutOfDistribution.Shuffled(idWindows.narrow(1, 0, context), new Generator((ulong)seed + 11))),
            ("foreign (OOD)", stack(OutOfDistribution.Foreign.Select(s => corpus.Vocabulary.Encode(s[..Math.Min(context, s.Length)].PadRight(context), dev)).ToArray())),
        };
        var table = new Table().Title("per-statement predictive entropy (nats/char), means; AUROC of epistemic uncertainty for in- vs out-of-distribution")
            .AddColumns("method", "statements", "total", "aleatoric", "epistemic", "AUROC epistemic", "AUROC total");
        var rows = new List<IReadOnlyList<object>>();
        var summary = new List<object>();
        for (var m = 0; m < methods.Count; m++)
        {
            var results = sets.Select(s => PerStatement(CharLanguageModel.MemberLogProbabilities(model, ensembles[m], s.Inputs))).ToArray();
            var ensembleNll = EnsembleNll(model, ensembles[m], idWindows);
            for (var si = 0; si < sets.Length; si++)
            {
                var r = results[si];
                var aurocE = si == 0 ? double.NaN : Auroc.Compute((IReadOnlyList<double>)r.Epistemic, results[0].Epistemic);
                var aurocT = si == 0 ? double.NaN : Auroc.Compute((IReadOnlyList<double>)r.Total, results[0].Total);
                table.AddRow(si == 0 ? Markup.Escape(methods[m].Name) : "", Markup.Escape(sets[si].Name), $"{r.Total.Average():F3}", $"{r.Aleatoric.Average():F3}",
                    $"{r.Epistemic.Average():F4}", si == 0 ? "—" : $"{aurocE:F3}", si == 0 ? "—" : $"{aurocT:F3}");
                summary.Add(new { method = methods[m].Name, set = sets[si].Name, statements = r.Total.Length, total = r.Total.Average(), aleatoric = r.Aleatoric.Average(),
                    epistemic = r.Epistemic.Average(), aurocEpistemic = aurocE, aurocTotal = aurocT, heldOutNll = ensembleNll });
                for (var i = 0; i < r.Total.Length; i++) rows.Add(new object[] { methods[m].Name, sets[si].Name, i, r.Total[i], r.Aleatoric[i], r.Epistemic[i] });
            }
            if (!noPlots) Reporting.LinePlot(Path.Combine(outDir, $"epistemic_{methods[m].File}.png"), $"{methods[m].Name}: epistemic uncertainty per statement (sorted)",
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

    /// <summary>
    /// K members trained as parallel SGHMC chains on the same mini-batches (the runtime's <see cref="Ensemble"/>), each
    /// from its own initialisation; the final state is checkpointed and reused with --resume.
    /// </summary>
    private static IReadOnlyList<ParameterTree> RunEnsemble(Ensemble<Tensor> ensemble, ParameterTree template, int members, int seed, int steps,
        Tensor train, int batchSize, int context, Action onStep, string checkpoint, bool resume, Device device)
    {
        SghmcState state;
        if (resume && File.Exists(checkpoint)) state = StateFile.Load<SghmcState>(checkpoint, device);
        else
        {
            state = ensemble.Init(members, k => MemberInit(template, seed, k), seed);
            var g = new Generator((ulong)seed * 31 + 5);
            for (var s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                state = ensemble.Update(state, TextEpisodes.RandomWindows(train, batchSize, context, g), inplace: true);
                for (var k = 0; k < members; k++) onStep();
            }
            StateFile.Save(checkpoint, state);
        }
        return Ensemble<Tensor>.Members(state).Select(m => m.Clone()).ToArray();
    }

    /// <summary>Total, aleatoric and epistemic entropy per statement: the runtime's per-position split, averaged over each statement's characters.</summary>
    private static (double[] Total, double[] Aleatoric, double[] Epistemic) PerStatement(Tensor memberLogProbs)
    {
        using var scope = NewDisposeScope();
        long s = memberLogProbs.shape[0], b = memberLogProbs.shape[1], t = memberLogProbs.shape[2], v = memberLogProbs.shape[3];
        var split = EntropyDecomposition.Of(memberLogProbs.reshape(s, b * t, v));
        double[] PerRow(Tensor x) => x.reshape(b, t).mean(new long[] { 1 }).to(ScalarType.Float64).cpu().data<double>().ToArray();
        return (PerRow(split.Total), PerRow(split.Aleatoric), PerRow(split.Epistemic));
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
        var logProbs = CharLanguageModel.MemberLogProbabilities(model, members, windows.narrow(1, 0, t));
        var v = logProbs.shape[3];
        var logMixture = PredictiveMetrics.Mixture(logProbs.reshape(members.Count, -1, v));
        return -logMixture.gather(-1, windows.narrow(1, 1, t).reshape(-1, 1)).mean().item<float>();
    }
}

