using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Posteriors.Cli.Study;
using Posteriors.Cli.Study.Methods;
using Posteriors.Laplace;
using Posteriors.Metrics;
using Posteriors.Models;
using Posteriors.Models.Data;
using Posteriors.Native;
using Posteriors.Samples;
using Posteriors.Serialization;
using Posteriors.Trees;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Cli.Commands;

/// <summary>
/// <c>posteriors laplace</c>: post-hoc KFAC Laplace for pretrained weights. Loads a PyTorch state_dict or safetensors
/// file into a zoo architecture, fits the Kronecker factors over the training set, tunes the prior precision, evaluates
/// MAP and the linearised (probit) predictive on the test set, and writes metrics.json and posterior.safetensors in a
/// new run folder.
/// </summary>
internal static class LaplaceCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var command = new Command("laplace", "Post-hoc KFAC Laplace for pretrained weights (.pt or .safetensors): fit, tune the prior precision, evaluate, write metrics and the posterior.");
        var common = new CommonOptions("results/laplace",
            $"Folder with the Fashion-MNIST IDX files. Default: ${FashionMnist.EnvironmentVariable}, then {FashionMnist.DebianFolder}.", oneSeed: true);
        common.AddTo(command);
        var weights = new Option<string>("--weights", "-w") { Description = "The pretrained weights: a PyTorch state_dict (torch.save(model.state_dict(), ...)) or a .safetensors file.", Required = true };
        weights.Validators.Add(r =>
        {
            var path = CommonOptions.Value<string>(r);
            if (path is not null && !File.Exists(path)) r.AddError($"--weights: no file '{path}'.");
        });
        var architecture = new Option<string>("--architecture", "-a")
        {
            Description = "The zoo architecture the weights belong to: cnn (SmallCnn, the study's CNN: conv1, conv2, fc1, fc2) or mlp (MlpClassifier on the flattened image: layers.fc0 … layers.out).",
            DefaultValueFactory = _ => "cnn",
        };
        CommonOptions.OneOf(architecture, "cnn", "mlp");
        var hidden = new Option<string>("--hidden") { Description = "MLP hidden widths, comma-separated (empty: multinomial logistic regression).", DefaultValueFactory = _ => "128" };
        hidden.Validators.Add(r =>
        {
            var text = CommonOptions.Value<string>(r);
            if (text is not null && ParseHidden(text) is null) r.AddError($"--hidden must be positive integers like 256,128 (or empty); got '{text}'.");
        });
        var widths = new Option<string>("--widths") { Description = "CNN widths conv1,conv2,dense.", DefaultValueFactory = _ => "32,64,128" };
        widths.Validators.Add(r =>
        {
            var text = CommonOptions.Value<string>(r);
            if (text is not null && ParseWidths(text) is null) r.AddError($"--widths must be three positive integers like 32,64,128; got '{text}'.");
        });
        var layers = new Option<string>("--layers") { Description = "Layers the posterior covers: last (the last Linear layer), dense (every Linear layer) or all (convolutions too).", DefaultValueFactory = _ => "all" };
        CommonOptions.OneOf(layers, "last", "dense", "all");
        var prior = CommonOptions.Positive(new Option<double>("--prior-precision") { Description = "The prior precision δ (the starting point of tuning; used as is with --tune none).", DefaultValueFactory = _ => 1.0 });
        var tune = new Option<string>("--tune")
        {
            Description = "How δ is chosen: ml-layer (one per layer, maximising the Laplace evidence; default), ml (one scalar), grid (validation NLL on 10 % of the training set held out from the fit), none.",
            DefaultValueFactory = _ => "ml-layer",
        };
        CommonOptions.OneOf(tune, "ml-layer", "ml", "grid", "none");
        var curvature = new Option<string>("--curvature") { Description = "sampled (one label drawn from the model per image: one backward pass per batch; default) or exact (one backward pass per class).", DefaultValueFactory = _ => "sampled" };
        CommonOptions.OneOf(curvature, "sampled", "exact");
        var convFactors = new Option<string>("--conv-factors")
        {
            Description = "The convolutions' KFAC factors: expand (every output position a datum of its own; default) or reduce (patches averaged and gradients summed over positions first: cheaper, a coarser approximation).",
            DefaultValueFactory = _ => "expand",
        };
        CommonOptions.OneOf(convFactors, "expand", "reduce");
        var trainSize = CommonOptions.AtLeast(new Option<int?>("--train-size") { Description = "Training images the factors are fitted on: the first N (those a model trained on a prefix saw). Default: all (512 with --tiny)." }, 1);
        var testSize = CommonOptions.AtLeast(new Option<int?>("--test-size") { Description = "Test images. Default: all (256 with --tiny)." }, 1);
        var batchSize = CommonOptions.AtLeast(new Option<int>("--batch-size", "-b") { Description = "Batch size of the fit.", DefaultValueFactory = _ => 128 }, 1);
        var monteCarlo = CommonOptions.AtLeast(new Option<int>("--mc-draws")
        {
            Description = "Also evaluate the linearised predictive by Monte Carlo with this many output draws per image (a check on the probit approximation; 0: probit only).",
            DefaultValueFactory = _ => 0,
        }, 0);
        var samples = CommonOptions.AtLeast(new Option<int>("--samples") { Description = "Posterior draws written to posterior.safetensors.", DefaultValueFactory = _ => 10 }, 0);
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the labelled synthetic stand-in data even if Fashion-MNIST is installed." };
        foreach (var o in new Option[] { weights, architecture, widths, hidden, layers, prior, tune, curvature, convFactors, trainSize, testSize, batchSize, monteCarlo, samples, synthetic })
            command.Options.Add(o);
        command.SetAction(parse =>
        {
            var c = common.Read(parse);
            return Run(console, c, new Settings(parse.GetValue(weights)!, parse.GetValue(architecture)!, ParseWidths(parse.GetValue(widths)!)!.Value,
                ParseHidden(parse.GetValue(hidden) ?? "")!, parse.GetValue(layers)!, parse.GetValue(prior),
                parse.GetValue(tune)!, parse.GetValue(curvature) == "sampled",
                parse.GetValue(convFactors) == "reduce" ? KfacConvFactors.Reduce : KfacConvFactors.Expand, parse.GetValue(trainSize) ?? (c.Tiny ? 512 : null), parse.GetValue(testSize) ?? (c.Tiny ? 256 : null),
                parse.GetValue(batchSize), parse.GetValue(monteCarlo), parse.GetValue(samples), parse.GetValue(synthetic)));
        });
        return command;
    }

    private sealed record Settings(string Weights, string Architecture, (int, int, int) Widths, int[] Hidden, string Layers, double PriorPrecision, string Tune, bool Sampled,
        KfacConvFactors ConvFactors, int? TrainSize, int? TestSize, int BatchSize, int MonteCarloDraws, int Samples, bool Synthetic);

    private static int Run(IAnsiConsole console, CommonSettings common, Settings s)
    {
        if (common.Data is { } folder && !s.Synthetic && FashionMnist.Find(folder) is null)
            throw new UsageException($"--data: no Fashion-MNIST IDX files in '{folder}' (train-images-idx3-ubyte.gz and the other three).");
        NativeSetup.EnsureTorchLoaded();
        set_num_threads(common.Threads);
        var device = CommonOptions.ResolveDevice(common.Device);
        var (train, test) = StudyData.Load(new StudyOptions { Synthetic = s.Synthetic, DataFolder = common.Data, NoInstall = true, TrainSize = s.TrainSize ?? 60_000, TestSize = s.TestSize ?? 10_000 }, console);
        if (s.TrainSize is { } n && n < train.Count) train = train.Take(n);   // the first n: the images a model trained on a prefix saw
        if (s.TestSize is { } m && m < test.Count) test = test.Subset(m, common.Seeds[0]);
        train = train.To(device);
        test = test.To(device);

        var (c1, c2, h) = s.Widths;
        nn.Module<Tensor, Tensor> model = s.Architecture == "mlp"
            ? new MlpClassifier((int)(train.Images.numel() / train.Count), s.Hidden, train.Classes)
            : new SmallCnn(train.Classes, c1, c2, h);
        var described = s.Architecture == "mlp" ? $"--architecture mlp --hidden {string.Join(",", s.Hidden)}" : $"--architecture cnn --widths {c1},{c2},{h}";
        model.to(device);
        try
        {
            WeightsFile.LoadInto(model, s.Weights);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException)
        {
            throw new UsageException($"--weights: {e.Message} ({described})");
        }
        model.eval();
        var mode = ParameterTree.FromModule(model).Clone();
        var run = RunFolder.Open(common.Output, resume: false);

        // --tune grid holds out the last 10 % of the training set from the fit, for the validation NLL.
        var fitData = train;
        ImageDataSet? validation = null;
        if (s.Tune == "grid")
        {
            var held = Math.Max(1, train.Count / 10);
            validation = new ImageDataSet(train.Images.narrow(0, train.Count - held, held), train.Labels.narrow(0, train.Count - held, held), train.Classes, train.Source, train.IsSynthetic);
            fitData = train.Take(train.Count - held);
        }
        var clock = Stopwatch.StartNew();
        var state = KfacLaplaceMethod.Fit(model, mode, fitData, s.BatchSize, KfacLaplaceMethod.LayersFor(model, s.Layers), s.Sampled, common.Seeds[0], _ => { }, s.ConvFactors);
        var fitSeconds = clock.Elapsed.TotalSeconds;
        state.SetPriorPrecision(s.PriorPrecision);
        var logLikelihood = state.LogLikelihoodSum.ToDouble();
        var groups = MarginalLikelihood.Groups(state);
        string tuning;
        switch (s.Tune)
        {
            case "ml" or "ml-layer":
            {
                var tuned = MarginalLikelihood.Tune(groups, logLikelihood, perGroup: s.Tune == "ml-layer", initial: s.PriorPrecision);
                state.SetPriorPrecision(s.PriorPrecision, tuned.PriorPrecision);
                tuning = $"log evidence {tuned.LogEvidence:F1} after {tuned.Steps} steps";
                break;
            }
            case "grid":
            {
                var candidates = Enumerable.Range(-4, 13).Select(e => Math.Pow(10, e / 2.0 + 1)).ToArray();
                var (best, _) = MarginalLikelihood.ValidationGrid(candidates, d =>
                {
                    state.SetPriorPrecision(d);
                    return PredictiveMetrics.NegativeLogLikelihood(KfacLaplaceMethod.LogProbs(state, model, validation!, 1), validation!.Labels);
                });
                state.SetPriorPrecision(best);
                tuning = $"validation NLL grid over {candidates.Length} values";
                break;
            }
            default:
                tuning = "not tuned";
                break;
        }
        var deltas = state.Layers.Select(l => state.PriorPrecision[l.Key].ToDouble()).ToArray();
        var evidence = MarginalLikelihood.LogEvidence(groups, logLikelihood, deltas);

        Tensor mapLogProbs;
        using (no_grad())
            mapLogProbs = cat(test.Sequential(1000).Select(b => nn.functional.log_softmax(model.call(b.X), 1)).ToArray(), 0);
        var (probitLogProbs, perLogitLogProbs, monteCarloLogProbs) = KfacLaplaceMethod.LogProbs(state, model, test, 1, s.MonteCarloDraws, common.Seeds[0]);
        var predictives = new List<(string, Tensor)> { ("map", mapLogProbs), ("laplace-kfac", probitLogProbs), ("laplace-kfac-per-logit", perLogitLogProbs) };
        if (monteCarloLogProbs is not null) predictives.Add(("laplace-kfac-mc", monteCarloLogProbs));
        var rows = predictives.Select(r => new Dictionary<string, object>
        {
            ["method"] = r.Item1,
            ["accuracy"] = PredictiveMetrics.Accuracy(r.Item2, test.Labels),
            ["nll"] = PredictiveMetrics.NegativeLogLikelihood(r.Item2, test.Labels),
            ["ece"] = Calibration.ExpectedCalibrationError(r.Item2, test.Labels),
        }).ToList();

        var table = new Table().AddColumns("method", "acc %", "NLL", "ECE %");
        foreach (var r in rows)
            table.AddRow((string)r["method"], ((double)r["accuracy"] * 100).ToString("F2", CultureInfo.InvariantCulture),
                ((double)r["nll"]).ToString("F4", CultureInfo.InvariantCulture), ((double)r["ece"] * 100).ToString("F2", CultureInfo.InvariantCulture));
        console.MarkupLine($"Post-hoc KFAC Laplace on {Markup.Escape(train.Source)}{(train.IsSynthetic ? " [bold yellow](SYNTHETIC)[/]" : "")}: " +
                           $"{fitData.Count:N0} training images fitted in {fitSeconds:F1} s; δ per layer {string.Join(", ", state.Layers.Select((l, i) => $"{l.Key} {deltas[i]:G3}"))} ({tuning}).");
        console.Write(table);

        var metrics = new Dictionary<string, object>
        {
            ["weights"] = Path.GetFullPath(s.Weights), ["architecture"] = described, ["mc_draws"] = s.MonteCarloDraws, ["synthetic"] = train.IsSynthetic, ["train_images"] = fitData.Count, ["test_images"] = test.Count,
            ["layers"] = state.Layers.Select(l => l.Key).ToArray(), ["curvature"] = state.Curvature, ["conv_factors"] = state.ConvFactors.ToString().ToLowerInvariant(), ["tune"] = s.Tune,
            ["prior_precision"] = state.Layers.Select((l, i) => (l.Key, deltas[i])).ToDictionary(p => p.Key, p => p.Item2),
            ["log_evidence"] = evidence, ["fit_seconds"] = fitSeconds, ["results"] = rows,
        };
        AtomicFile.WriteAllText(Path.Combine(run, "metrics.json"), JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }));
        WeightsFile.Save(Path.Combine(run, "posterior.safetensors"), PosteriorTensors(state, s.Samples, common.Seeds[0]),
            new Dictionary<string, string> { ["format"] = "pt", ["kind"] = "KfacLaplace", ["layers"] = string.Join(",", state.Layers.Select(l => l.Key)), ["data_count"] = state.DataCount.ToString(CultureInfo.InvariantCulture) });
        console.MarkupLine($"Wrote {Markup.Escape(Path.Combine(run, "metrics.json"))} and posterior.safetensors.");
        return 0;
    }

    /// <summary>
    /// What posterior.safetensors holds, under names Python can split on '/': mean/&lt;param&gt;, kfac/&lt;layer&gt;/A (the
    /// mean input second moment), kfac/&lt;layer&gt;/G, prior_precision/&lt;layer&gt; and samples/&lt;param&gt; [S, ...].
    /// </summary>
    internal static ParameterTree PosteriorTensors(KfacLaplaceState state, int samples, long seed)
    {
        var leaves = new List<KeyValuePair<string, Tensor>>();
        leaves.AddRange(state.Params.Select(p => new KeyValuePair<string, Tensor>("mean/" + p.Key, p.Value.detach())));
        foreach (var layer in state.Layers)
        {
            leaves.Add(new("kfac/" + layer.Key + "/A", state.FactorASum[layer.Key] / state.DataCount));
            leaves.Add(new("kfac/" + layer.Key + "/G", state.FactorG[layer.Key]));
            leaves.Add(new("prior_precision/" + layer.Key, state.PriorPrecision[layer.Key]));
        }
        if (samples > 0)
        {
            var draws = state.Sample(samples, seed);
            leaves.AddRange(draws.Select(state.Subset).Select(p => new KeyValuePair<string, Tensor>("samples/" + p.Key, p.Value)));
        }
        return new ParameterTree(leaves);
    }

    private static int[]? ParseHidden(string text)
    {
        if (text.Trim().Length == 0) return Array.Empty<int>();
        var parts = text.Split(',').Select(p => int.TryParse(p.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        return parts.All(p => p >= 1) ? parts : null;
    }

    private static (int, int, int)? ParseWidths(string text)
    {
        var parts = text.Split(',').Select(p => int.TryParse(p.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : -1).ToArray();
        return parts.Length == 3 && parts.All(p => p >= 1) ? (parts[0], parts[1], parts[2]) : null;
    }
}
