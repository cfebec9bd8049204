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
/// MAP and the linearised predictive on the test set (or, with --validation-from-test, on the test images not held out
/// for tuning), optionally replaces KFAC's eigenvalues by corrected ones (EKFAC, a second pass over the training set), and writes metrics.json, posterior.safetensors, outputs.safetensors (the output Gaussians) and kfac.state
/// (the fitted factors, which --fit-from reuses) in a new run folder.
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
            Description = "How δ is chosen: ml-layer (one per layer, maximising the Laplace evidence; default), ml (one scalar), grid (one scalar with the lowest validation NLL: on --validation-from-test's images, or else on 10 % of the training set held out from the fit, which favours the MAP because the MAP was trained on those images), none.",
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
        var eigenvalues = new Option<string>("--eigenvalues")
        {
            Description = "The curvature's eigenvalues in the factors' eigenbasis: kfac (those of G ⊗ A; default) or corrected (EKFAC: a second pass over the training images, after the fit or --fit-from, measures the curvature's exact diagonal in that basis with the same curvature and seed; the new kfac.state keeps them).",
            DefaultValueFactory = _ => "kfac",
        };
        CommonOptions.OneOf(eigenvalues, "kfac", "corrected");
        var trainSize = CommonOptions.AtLeast(new Option<int?>("--train-size") { Description = "Training images the factors are fitted on: the first N (those a model trained on a prefix saw). Default: all (512 with --tiny)." }, 1);
        var testSize = CommonOptions.AtLeast(new Option<int?>("--test-size") { Description = "Test images. Default: all (256 with --tiny)." }, 1);
        var batchSize = CommonOptions.AtLeast(new Option<int>("--batch-size", "-b") { Description = "Batch size of the fit.", DefaultValueFactory = _ => 128 }, 1);
        var monteCarlo = CommonOptions.AtLeast(new Option<int>("--mc-draws")
        {
            Description = "Also evaluate the linearised predictive by Monte Carlo with this many output draws per image (0: the closed forms only); --tune grid then picks δ by the Monte Carlo validation NLL.",
            DefaultValueFactory = _ => 0,
        }, 0);
        var validationFromTest = CommonOptions.AtLeast(new Option<int?>("--validation-from-test")
        {
            Description = "Hold out this many test images (a random split seeded by --seed) as the validation set of --tune grid and --tune-temperature; every row, the MAP's included, is then reported on the other test images only.",
        }, 1);
        var tuneTemperature = new Option<bool>("--tune-temperature")
        {
            Description = "Also report each Laplace predictive with the covariance scaled by the temperature T (from a grid 2^(k/2), k = −8 … 8) with the lowest validation NLL, on top of the tuned δ. Needs --validation-from-test.",
        };
        var fitFrom = new Option<string>("--fit-from")
        {
            Description = "Reuse the KFAC factors of an earlier run (its kfac.state) instead of fitting: the same weights, layers, curvature and training images.",
        };
        fitFrom.Validators.Add(r =>
        {
            var path = CommonOptions.Value<string>(r);
            if (path is not null && !File.Exists(path)) r.AddError($"--fit-from: no file '{path}'.");
        });
        var samples = CommonOptions.AtLeast(new Option<int>("--samples") { Description = "Posterior draws written to posterior.safetensors.", DefaultValueFactory = _ => 10 }, 0);
        var synthetic = new Option<bool>("--synthetic") { Description = "Use the labelled synthetic stand-in data even if Fashion-MNIST is installed." };
        foreach (var o in new Option[] { weights, architecture, widths, hidden, layers, prior, tune, curvature, convFactors, eigenvalues, trainSize, testSize, batchSize, monteCarlo, validationFromTest, tuneTemperature, fitFrom, samples, synthetic })
            command.Options.Add(o);
        command.SetAction(parse =>
        {
            var c = common.Read(parse);
            return Run(console, c, new Settings(parse.GetValue(weights)!, parse.GetValue(architecture)!, ParseWidths(parse.GetValue(widths)!)!.Value,
                ParseHidden(parse.GetValue(hidden) ?? "")!, parse.GetValue(layers)!, parse.GetValue(prior),
                parse.GetValue(tune)!, parse.GetValue(curvature) == "sampled",
                parse.GetValue(convFactors) == "reduce" ? KfacConvFactors.Reduce : KfacConvFactors.Expand, parse.GetValue(eigenvalues) == "corrected", parse.GetValue(trainSize) ?? (c.Tiny ? 512 : null), parse.GetValue(testSize) ?? (c.Tiny ? 256 : null),
                parse.GetValue(batchSize), parse.GetValue(monteCarlo), parse.GetValue(validationFromTest), parse.GetValue(tuneTemperature), parse.GetValue(fitFrom),
                parse.GetValue(samples), parse.GetValue(synthetic)));
        });
        return command;
    }

    /// <summary>How the linearised predictive's output Gaussians are read: pairwise or per-logit probit, or Monte Carlo.</summary>
    private enum Reading { Pairwise, PerLogit, MonteCarlo }

    private sealed record Settings(string Weights, string Architecture, (int, int, int) Widths, int[] Hidden, string Layers, double PriorPrecision, string Tune, bool Sampled,
        KfacConvFactors ConvFactors, bool Corrected, int? TrainSize, int? TestSize, int BatchSize, int MonteCarloDraws, int? ValidationFromTest, bool TuneTemperature, string? FitFrom, int Samples, bool Synthetic);

    private static int Run(IAnsiConsole console, CommonSettings common, Settings s)
    {
        if (common.Data is { } folder && !s.Synthetic && FashionMnist.Find(folder) is null)
            throw new UsageException($"--data: no Fashion-MNIST IDX files in '{folder}' (train-images-idx3-ubyte.gz and the other three).");
        if (s.TuneTemperature && s.ValidationFromTest is null)
            throw new UsageException("--tune-temperature needs --validation-from-test (the temperature is chosen on held-out test images).");
        NativeSetup.EnsureTorchLoaded();
        set_num_threads(common.Threads);
        var device = CommonOptions.ResolveDevice(common.Device);
        var (train, test) = StudyData.Load(new StudyOptions { Synthetic = s.Synthetic, DataFolder = common.Data, NoInstall = true, TrainSize = s.TrainSize ?? 60_000, TestSize = s.TestSize ?? 10_000 }, console);
        if (s.TrainSize is { } n && n < train.Count) train = train.Take(n);   // the first n: the images a model trained on a prefix saw
        if (s.TestSize is { } m && m < test.Count) test = test.Subset(m, common.Seeds[0]);
        ImageDataSet? validation = null;
        if (s.ValidationFromTest is { } v)
        {
            if (v >= test.Count)
                throw new UsageException($"--validation-from-test must be less than the {test.Count:N0} test images, leaving some to report on; got {v}.");
            (validation, test) = SplitTest(test, v, common.Seeds[0]);
        }
        train = train.To(device);
        test = test.To(device);
        validation = validation?.To(device);

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

        // Without a validation set from the test images, --tune grid holds out the last 10 % of the training set from the fit.
        var fitData = train;
        if (s.Tune == "grid" && validation is null)
        {
            var held = Math.Max(1, train.Count / 10);
            validation = new ImageDataSet(train.Images.narrow(0, train.Count - held, held), train.Labels.narrow(0, train.Count - held, held), train.Classes, train.Source, train.IsSynthetic);
            fitData = train.Take(train.Count - held);
        }
        var layerNames = KfacLaplaceMethod.LayersFor(model, s.Layers);
        var reused = s.FitFrom is not null ? Reuse(s.FitFrom, mode, KfacLaplaceMethod.Transform(model, layerNames, s.Sampled, s.ConvFactors).Layers, s.Sampled, s.ConvFactors, fitData.Count, device) : null;
        var run = RunFolder.Open(common.Output, resume: false);
        var clock = Stopwatch.StartNew();
        var state = reused ?? KfacLaplaceMethod.Fit(model, mode, fitData, s.BatchSize, layerNames, s.Sampled, common.Seeds[0], _ => { }, s.ConvFactors);
        var fitSeconds = clock.Elapsed.TotalSeconds;
        // --eigenvalues kfac asks for the factors' own eigenvalues even when the reused state carries corrections.
        if (!s.Corrected && state.IsCorrected) state.ClearEigenvalueCorrection();
        var correcting = s.Corrected && !state.IsCorrected;
        clock.Restart();
        if (correcting) state = KfacLaplaceMethod.CorrectEigenvalues(model, state, fitData, s.BatchSize, layerNames, s.Sampled, s.ConvFactors);
        var correctionSeconds = clock.Elapsed.TotalSeconds;
        if (reused is null || correcting) StateFile.Save(Path.Combine(run, "kfac.state"), state);
        // Per layer: the trace of G ⊗ A (tr G · tr A) and, when corrected, the trace of the corrected eigenvalues.
        var traces = state.Layers.ToDictionary(l => l.Key, l =>
        {
            var (la, _, lg, _) = state.Eigen()[l.Key];
            var row = new Dictionary<string, double> { ["kfac"] = (la.sum() * lg.sum()).ToDouble() };
            if (state.IsCorrected) row["corrected"] = state.CurvatureEigenvalues(l).sum().ToDouble();
            return row;
        });
        if (state.IsCorrected)
            console.MarkupLine("Curvature trace per layer, KFAC → corrected: " + string.Join(", ", traces.Select(t =>
                $"{t.Key} {t.Value["kfac"].ToString("G4", CultureInfo.InvariantCulture)} → {t.Value["corrected"].ToString("G4", CultureInfo.InvariantCulture)}")) +
                (correcting ? $" (correction pass {correctionSeconds:F1} s)" : " (corrections reused)") + ".");
        state.SetPriorPrecision(s.PriorPrecision);
        var logLikelihood = state.LogLikelihoodSum.ToDouble();
        var groups = MarginalLikelihood.Groups(state);
        // The MC draws of the validation and the reported images come from separate streams of the seed.
        Generator Draws(int stream) => new Rng().For(common.Seeds[0], 0, device, stream);
        // One reading of the output Gaussians at a temperature; Monte Carlo draws from the given stream.
        Tensor Read((Tensor Mean, Tensor Covariance) outputs, double temperature, Reading reading, int stream)
        {
            var monteCarlo = reading == Reading.MonteCarlo;
            var p = KfacLaplaceMethod.LogProbs(outputs, temperature, monteCarlo ? s.MonteCarloDraws : 0, monteCarlo ? Draws(stream) : null);
            return reading switch { Reading.Pairwise => p.Pairwise, Reading.PerLogit => p.PerLogit, _ => p.MonteCarlo! };
        }
        // δ and T are tuned on the predictive that is reported as the GLM predictive itself: Monte Carlo when drawn.
        double ValidationNll((Tensor Mean, Tensor Covariance) outputs, double temperature, Reading reading)
        {
            using var scope = NewDisposeScope();
            return PredictiveMetrics.NegativeLogLikelihood(Read(outputs, temperature, reading, 1), validation!.Labels);
        }
        string tuning;
        IReadOnlyList<(double, double)>? grid = null;
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
                var (best, nlls) = MarginalLikelihood.ValidationGrid(candidates, d =>
                {
                    state.SetPriorPrecision(d);
                    var outputs = KfacLaplaceMethod.OutputGaussians(state, model, validation!);
                    return ValidationNll(outputs, 1, s.MonteCarloDraws > 0 ? Reading.MonteCarlo : Reading.Pairwise);
                });
                state.SetPriorPrecision(best);
                grid = nlls;
                tuning = $"validation NLL ({(s.MonteCarloDraws > 0 ? "Monte Carlo" : "pairwise probit")}) grid over {candidates.Length} values on {validation!.Count:N0} {(s.ValidationFromTest is null ? "held-out training" : "held-out test")} images";
                break;
            }
            default:
                tuning = "not tuned";
                break;
        }
        var deltas = state.Layers.Select(l => state.PriorPrecision[l.Key].ToDouble()).ToArray();
        var evidence = MarginalLikelihood.LogEvidence(groups, logLikelihood, deltas);

        clock.Restart();
        var testOutputs = KfacLaplaceMethod.OutputGaussians(state, model, test);
        var (pairwise, perLogit, monteCarlo) = KfacLaplaceMethod.LogProbs(testOutputs, 1, s.MonteCarloDraws, s.MonteCarloDraws > 0 ? Draws(0) : null);
        var predictives = new List<(string Name, Tensor LogProbs, double? Temperature)>
        {
            ("map", nn.functional.log_softmax(testOutputs.Mean, 1), null), ("laplace-kfac", pairwise, 1), ("laplace-kfac-per-logit", perLogit, 1),
        };
        if (monteCarlo is not null) predictives.Add(("laplace-kfac-mc", monteCarlo, 1));
        var temperatures = new List<object>();
        if (s.TuneTemperature)
        {
            var validationOutputs = KfacLaplaceMethod.OutputGaussians(state, model, validation!);
            var candidates = Enumerable.Range(-8, 17).Select(k => Math.Pow(2, k / 2.0)).ToArray();
            foreach (var (name, reading) in new[] { ("laplace-kfac", Reading.Pairwise), ("laplace-kfac-per-logit", Reading.PerLogit), ("laplace-kfac-mc", Reading.MonteCarlo) })
            {
                if (reading == Reading.MonteCarlo && s.MonteCarloDraws == 0) continue;
                var nlls = candidates.Select(t => (T: t, Nll: ValidationNll(validationOutputs, t, reading))).ToList();
                var best = nlls.MinBy(g => g.Nll).T;
                predictives.Add((name + "-t", Read(testOutputs, best, reading, 0), best));
                temperatures.Add(new Dictionary<string, object> { ["method"] = name, ["temperature"] = best, ["validation_nll"] = nlls.Select(g => new[] { g.T, g.Nll }).ToArray() });
            }
        }
        var evaluateSeconds = clock.Elapsed.TotalSeconds;
        var rows = predictives.Select(r =>
        {
            var row = new Dictionary<string, object>
            {
                ["method"] = r.Name,
                ["accuracy"] = PredictiveMetrics.Accuracy(r.LogProbs, test.Labels),
                ["nll"] = PredictiveMetrics.NegativeLogLikelihood(r.LogProbs, test.Labels),
                ["ece"] = Calibration.ExpectedCalibrationError(r.LogProbs, test.Labels),
            };
            if (r.Temperature is { } t) row["temperature"] = t;
            return row;
        }).ToList();

        var table = new Table().AddColumns("method", "T", "acc %", "NLL", "ECE %");
        foreach (var r in rows)
            table.AddRow((string)r["method"], r.TryGetValue("temperature", out var t) ? ((double)t).ToString("G3", CultureInfo.InvariantCulture) : "",
                ((double)r["accuracy"] * 100).ToString("F2", CultureInfo.InvariantCulture),
                ((double)r["nll"]).ToString("F4", CultureInfo.InvariantCulture), ((double)r["ece"] * 100).ToString("F2", CultureInfo.InvariantCulture));
        console.MarkupLine($"Post-hoc KFAC Laplace on {Markup.Escape(train.Source)}{(train.IsSynthetic ? " [bold yellow](SYNTHETIC)[/]" : "")}: " +
                           $"{fitData.Count:N0} training images {(reused is null ? $"fitted in {fitSeconds:F1} s" : $"(factors reused from {Markup.Escape(s.FitFrom!)})")}; " +
                           $"δ per layer {string.Join(", ", state.Layers.Select((l, i) => $"{l.Key} {deltas[i]:G3}"))} ({Markup.Escape(tuning)}); " +
                           $"{test.Count:N0} test images reported{(s.ValidationFromTest is { } heldOut ? $" ({heldOut:N0} more held out for validation)" : "")}, evaluated in {evaluateSeconds:F1} s.");
        console.Write(table);

        var metrics = new Dictionary<string, object>
        {
            ["weights"] = Path.GetFullPath(s.Weights), ["architecture"] = described, ["mc_draws"] = s.MonteCarloDraws, ["synthetic"] = train.IsSynthetic, ["train_images"] = fitData.Count,
            ["test_images"] = test.Count, ["validation"] = s.ValidationFromTest is { } count ? $"{count} test images, split by seed {common.Seeds[0]}" : validation is null ? "none" : $"the last {validation.Count} training images",
            ["layers"] = state.Layers.Select(l => l.Key).ToArray(), ["curvature"] = state.Curvature, ["conv_factors"] = state.ConvFactors.ToString().ToLowerInvariant(), ["eigenvalues"] = s.Corrected ? "corrected" : "kfac", ["tune"] = s.Tune,
            ["prior_precision"] = state.Layers.Select((l, i) => (l.Key, deltas[i])).ToDictionary(p => p.Key, p => p.Item2),
            ["log_evidence"] = evidence, ["fit_seconds"] = reused is null ? fitSeconds : 0, ["fit_from"] = s.FitFrom is null ? "" : Path.GetFullPath(s.FitFrom),
            ["correction_seconds"] = correcting ? correctionSeconds : 0, ["curvature_trace"] = traces,
            ["evaluate_seconds"] = evaluateSeconds, ["results"] = rows,
        };
        if (grid is not null) metrics["prior_precision_grid"] = grid.Select(g => new[] { g.Item1, g.Item2 }).ToArray();
        if (temperatures.Count > 0) metrics["temperature_grid"] = temperatures;
        AtomicFile.WriteAllText(Path.Combine(run, "metrics.json"), JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }));
        WeightsFile.Save(Path.Combine(run, "posterior.safetensors"), PosteriorTensors(state, s.Samples, common.Seeds[0]),
            new Dictionary<string, string> { ["format"] = "pt", ["kind"] = "KfacLaplace", ["layers"] = string.Join(",", state.Layers.Select(l => l.Key)), ["data_count"] = state.DataCount.ToString(CultureInfo.InvariantCulture) });
        WeightsFile.Save(Path.Combine(run, "outputs.safetensors"), new ParameterTree(new KeyValuePair<string, Tensor>[]
        {
            new("mean", testOutputs.Mean), new("covariance", testOutputs.Covariance), new("labels", test.Labels),
        }), new Dictionary<string, string> { ["format"] = "pt" });
        console.MarkupLine($"Wrote {Markup.Escape(Path.Combine(run, "metrics.json"))}, posterior.safetensors, outputs.safetensors{(reused is null || correcting ? " and kfac.state" : "")}.");
        return 0;
    }

    /// <summary>
    /// A seeded split of <paramref name="test"/>: <paramref name="count"/> images for validation, the rest reported on.
    /// </summary>
    internal static (ImageDataSet Validation, ImageDataSet Reported) SplitTest(ImageDataSet test, long count, long seed)
    {
        var shuffled = test.Subset(test.Count, seed);
        var rest = shuffled.Count - count;
        return (shuffled.Take(count),
            new ImageDataSet(shuffled.Images.narrow(0, count, rest), shuffled.Labels.narrow(0, count, rest), shuffled.Classes, shuffled.Source, shuffled.IsSynthetic));
    }

    /// <summary>The KFAC state saved by an earlier run, if it was fitted at these weights, on these layers, with this curvature and this many images.</summary>
    private static KfacLaplaceState Reuse(string path, ParameterTree mode, IReadOnlyList<KfacLayer> layers, bool sampled, KfacConvFactors convFactors, long images, Device device)
    {
        KfacLaplaceState state;
        try
        {
            state = StateFile.Load<KfacLaplaceState>(path, device);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"--fit-from: {e.Message}");
        }
        var expected = layers.Select(l => l.Key).ToArray();
        var found = state.Layers.Select(l => l.Key).ToArray();
        if (!found.SequenceEqual(expected))
            throw new UsageException($"--fit-from: '{path}' covers the layers {string.Join(", ", found)}; --layers asks for {string.Join(", ", expected)}.");
        if (state.Curvature != (sampled ? "sampled" : "exact"))
            throw new UsageException($"--fit-from: '{path}' has {state.Curvature} curvature; --curvature asks for {(sampled ? "sampled" : "exact")}.");
        if (state.ConvFactors != convFactors)
            throw new UsageException($"--fit-from: '{path}' has {state.ConvFactors.ToString().ToLowerInvariant()} convolution factors; --conv-factors asks for {convFactors.ToString().ToLowerInvariant()}.");
        if (state.DataCount != images)
            throw new UsageException($"--fit-from: '{path}' was fitted on {state.DataCount:N0} training images; this run fits on {images:N0}.");
        foreach (var name in mode.Names)
            if (!state.Params.Names.Contains(name) || !state.Params[name].shape.SequenceEqual(mode[name].shape) || !state.Params[name].eq(mode[name]).all().ToBoolean())
                throw new UsageException($"--fit-from: '{path}' was fitted at other weights than --weights ('{name}' differs).");
        return state;
    }

    /// <summary>
    /// What posterior.safetensors holds, under names Python can split on '/': mean/&lt;param&gt;, kfac/&lt;layer&gt;/A (the
    /// mean input second moment), kfac/&lt;layer&gt;/G, with corrected eigenvalues kfac/&lt;layer&gt;/eigenvalues (the
    /// [out, in'] curvature eigenvalues in the eigenbasis of G and A, which replace λ_G λ_Aᵀ), prior_precision/&lt;layer&gt;
    /// and samples/&lt;param&gt; [S, ...].
    /// </summary>
    internal static ParameterTree PosteriorTensors(KfacLaplaceState state, int samples, long seed)
    {
        var leaves = new List<KeyValuePair<string, Tensor>>();
        leaves.AddRange(state.Params.Select(p => new KeyValuePair<string, Tensor>("mean/" + p.Key, p.Value.detach())));
        foreach (var layer in state.Layers)
        {
            leaves.Add(new("kfac/" + layer.Key + "/A", state.FactorASum[layer.Key] / state.DataCount));
            leaves.Add(new("kfac/" + layer.Key + "/G", state.FactorG[layer.Key]));
            if (state.IsCorrected) leaves.Add(new("kfac/" + layer.Key + "/eigenvalues", state.CurvatureEigenvalues(layer)));
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
