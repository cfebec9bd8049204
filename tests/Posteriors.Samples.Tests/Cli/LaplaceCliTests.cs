using System.Text.Json;
using Posteriors.Laplace;
using Posteriors.Models;
using Posteriors.Serialization;
using Posteriors.Trees;
using CommandLine = Posteriors.Cli.Commands.Cli;

namespace Posteriors.Samples.Tests.Cli;

/// <summary>`posteriors laplace`: pretrained weights in, metrics and a posterior Python can read out; bad weights refused.</summary>
[NonParallelizable]
public class LaplaceCliTests
{
    private string _out = null!;

    [SetUp]
    public void CreateOutput() => _out = Path.Combine(Path.GetTempPath(), "posteriors-laplace-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteOutput()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    private string Weights(int hidden)
    {
        Directory.CreateDirectory(_out);
        TorchSharp.torch.manual_seed(1);
        using var model = new SmallCnn(10, 4, 8, hidden);
        var path = Path.Combine(_out, $"cnn-{hidden}.safetensors");
        WeightsFile.Save(path, ParameterTree.FromModule(model));
        return path;
    }

    [TestCase("ml-layer")]
    [TestCase("grid")]
    public void FitsTunesEvaluatesAndWritesMetricsAndThePosterior(string tune)
    {
        var weights = Weights(16);
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "--tune", tune, "--mc-draws", "20", "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, console, error), Is.EqualTo(0), error + text.ToString());
        var run = new DirectoryInfo(Path.Combine(_out, "runs", "latest")).ResolveLinkTarget(true)!.FullName;
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        var results = metrics.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.That(results.Select(r => r.GetProperty("method").GetString()), Is.EqualTo(new[] { "map", "laplace-kfac", "laplace-kfac-per-logit", "laplace-kfac-mc" }));
        Assert.That(results.All(r => double.IsFinite(r.GetProperty("nll").GetDouble())));
        Assert.That(metrics.RootElement.GetProperty("synthetic").GetBoolean());
        var deltas = metrics.RootElement.GetProperty("prior_precision").EnumerateObject().Select(p => p.Value.GetDouble()).ToList();
        Assert.That(deltas, Has.Count.EqualTo(4).And.All.GreaterThan(0));
        var posterior = WeightsFile.Load(Path.Combine(run, "posterior.safetensors"));
        Assert.That(posterior.Names, Does.Contain("mean/fc2.weight").And.Contain("kfac/conv1/A").And.Contain("kfac/fc1/G").And.Contain("prior_precision/fc2"));
        Assert.That(posterior["samples/fc2.weight"].shape, Is.EqualTo(new long[] { 10, 10, 16 }));
        Assert.That(text.ToString(), Does.Contain("SYNTHETIC"));
    }

    private static string LatestRun(string runs) => new DirectoryInfo(Path.Combine(runs, "latest")).ResolveLinkTarget(true)!.FullName;

    [Test]
    public void AValidationSplitOfTheTestSetTunesDeltaAndTheTemperatureAndEveryRowIsReportedOnTheRest()
    {
        var weights = Weights(16);
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        var runs = Path.Combine(_out, "runs");
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "--tune", "grid", "--mc-draws", "20",
            "--validation-from-test", "64", "--tune-temperature", "-o", runs };
        Assert.That(CommandLine.Run(args, console, error), Is.EqualTo(0), error + text.ToString());
        var run = LatestRun(runs);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        var root = metrics.RootElement;
        Assert.That(root.GetProperty("test_images").GetInt64(), Is.EqualTo(256 - 64), "every row on the test images not held out");
        Assert.That(root.GetProperty("train_images").GetInt64(), Is.EqualTo(512), "a validation set from the test set leaves the whole training set to the fit");
        var results = root.GetProperty("results").EnumerateArray().ToList();
        Assert.That(results.Select(r => r.GetProperty("method").GetString()), Is.EqualTo(new[]
        {
            "map", "laplace-kfac", "laplace-kfac-per-logit", "laplace-kfac-mc", "laplace-kfac-t", "laplace-kfac-per-logit-t", "laplace-kfac-mc-t",
        }));
        Assert.That(results.All(r => double.IsFinite(r.GetProperty("nll").GetDouble())));
        var grid = root.GetProperty("prior_precision_grid").EnumerateArray().Select(g => (Delta: g[0].GetDouble(), Nll: g[1].GetDouble())).ToList();
        Assert.That(grid, Has.Count.EqualTo(13));
        var chosen = root.GetProperty("prior_precision").EnumerateObject().Select(p => p.Value.GetDouble()).Distinct().Single();
        Assert.That(chosen, Is.EqualTo(grid.MinBy(g => g.Nll).Delta).Within(1e-6).Percent, "δ (stored in float32) is the grid's best on the validation images");
        foreach (var tuned in root.GetProperty("temperature_grid").EnumerateArray())
        {
            var nlls = tuned.GetProperty("validation_nll").EnumerateArray().Select(g => (T: g[0].GetDouble(), Nll: g[1].GetDouble())).ToList();
            var name = tuned.GetProperty("method").GetString() + "-t";
            var row = results.Single(r => r.GetProperty("method").GetString() == name);
            Assert.That(row.GetProperty("temperature").GetDouble(), Is.EqualTo(nlls.MinBy(g => g.Nll).T).And.EqualTo(tuned.GetProperty("temperature").GetDouble()), name);
        }
        var outputs = WeightsFile.Load(Path.Combine(run, "outputs.safetensors"));
        Assert.That(outputs["covariance"].shape, Is.EqualTo(new long[] { 192, 10, 10 }));
        Assert.That(outputs["labels"].shape, Is.EqualTo(new long[] { 192 }));
    }

    [TestCase("0", "--validation-from-test must be a positive integer; got 0")]
    [TestCase("-3", "--validation-from-test must be a positive integer; got -3")]
    [TestCase("256", "--validation-from-test must be less than the 256 test images, leaving some to report on; got 256")]
    [TestCase("1000", "--validation-from-test must be less than the 256 test images, leaving some to report on; got 1000")]
    public void AValidationSizeThatLeavesNoTestImagesIsRefused(string size, string message)
    {
        var weights = Weights(16);
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "--validation-from-test", size, "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain(message));
        Assert.That(Directory.Exists(Path.Combine(_out, "runs")), Is.False, "no run folder was made");
    }

    [Test]
    public void ATemperatureNeedsAValidationSplitOfTheTestSet()
    {
        var weights = Weights(16);
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "--tune-temperature", "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--tune-temperature needs --validation-from-test"));
    }

    [Test]
    public void AnEarlierFitIsReusedOnlyForTheSameWeightsLayersAndImages()
    {
        var weights = Weights(16);
        var runs = Path.Combine(_out, "runs");
        string[] Args(params string[] extra) =>
            new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "-o", runs }.Concat(extra).ToArray();
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        Assert.That(CommandLine.Run(Args(), console, error), Is.EqualTo(0), error + text.ToString());
        var first = LatestRun(runs);
        var state = Path.Combine(first, "kfac.state");
        Assert.That(File.Exists(state));

        Assert.That(CommandLine.Run(Args("--fit-from", state), console, error), Is.EqualTo(0), error + text.ToString());
        var second = LatestRun(runs);
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(File.Exists(Path.Combine(second, "kfac.state")), Is.False, "a reused fit is not written again");
        using var a = JsonDocument.Parse(File.ReadAllText(Path.Combine(first, "metrics.json")));
        using var b = JsonDocument.Parse(File.ReadAllText(Path.Combine(second, "metrics.json")));
        Assert.That(b.RootElement.GetProperty("log_evidence").GetDouble(), Is.EqualTo(a.RootElement.GetProperty("log_evidence").GetDouble()));
        Assert.That(b.RootElement.GetProperty("results").ToString(), Is.EqualTo(a.RootElement.GetProperty("results").ToString()), "the same factors predict the same");

        foreach (var (extra, message) in new[]
                 {
                     (new[] { "--layers", "last" }, "covers the layers conv1, conv2, fc1, fc2; --layers asks for fc2"),
                     (new[] { "--curvature", "exact" }, "has sampled curvature; --curvature asks for exact"),
                     (new[] { "--conv-factors", "reduce" }, "has expand convolution factors; --conv-factors asks for reduce"),
                     (new[] { "--train-size", "256" }, "was fitted on 512 training images; this run fits on 256"),
                     (new[] { "--tune", "grid" }, "was fitted on 512 training images; this run fits on 461"),
                 })
        {
            error = new StringWriter();
            Assert.That(CommandLine.Run(Args(extra.Concat(new[] { "--fit-from", state }).ToArray()), TestConsole.Recorder().Console, error), Is.EqualTo(2), string.Join(" ", extra));
            Assert.That(error.ToString(), Does.Contain("--fit-from").And.Contain(message));
        }
        error = new StringWriter();
        Assert.That(CommandLine.Run(Args("--fit-from", Path.Combine(first, "metrics.json")), TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--fit-from").And.Contain("not a Posteriors state file"));
    }

    [Test]
    public void AnMlpFromTheZooTakesItsLastLayerAndMisshapedWeightsNameTheArchitecture()
    {
        Directory.CreateDirectory(_out);
        TorchSharp.torch.manual_seed(2);
        using var mlp = new MlpClassifier(28 * 28, new[] { 12, 8 }, 10);
        var weights = Path.Combine(_out, "mlp.safetensors");
        WeightsFile.Save(weights, ParameterTree.FromModule(mlp));
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--architecture", "mlp", "--hidden", "12,8", "--layers", "last", "--tiny", "--synthetic", "--threads", "1", "--tune", "ml", "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, console, error), Is.EqualTo(0), error + text.ToString());
        var run = new DirectoryInfo(Path.Combine(_out, "runs", "latest")).ResolveLinkTarget(true)!.FullName;
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        Assert.That(metrics.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetString()), Is.EqualTo(new[] { "layers.out" }));
        Assert.That(metrics.RootElement.GetProperty("results").EnumerateArray().All(r => double.IsFinite(r.GetProperty("nll").GetDouble())));

        error = new StringWriter();
        args[6] = "16,8";
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("'layers.fc0.weight' is [12, 784] in the file but [16, 784] in the model").And.Contain("--architecture mlp --hidden 16,8"));
    }

    [Test]
    public void WeightsOfAnotherArchitectureOrACorruptFileAreOneLineNamingTheTensor()
    {
        var weights = Weights(32);
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--weights").And.Contain("'fc1.weight' is [32, 392] in the file but [16, 392] in the model"));
        Assert.That(Directory.Exists(Path.Combine(_out, "runs")), Is.False, "no run folder was made");

        var corrupt = Path.Combine(_out, "corrupt.safetensors");
        File.WriteAllBytes(corrupt, File.ReadAllBytes(weights)[..100]);
        error = new StringWriter();
        args[2] = corrupt;
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("not a valid safetensors file"));

        error = new StringWriter();
        Assert.That(CommandLine.Run(new[] { "laplace", "--weights", weights, "--prior-precision", "0" }, TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--prior-precision").And.Contain("0"));
    }

    [Test]
    public void TheStudyRunsTheKfacMethodsOnEveryLayer()
    {
        var (console, text) = TestConsole.Recorder();
        var output = Path.Combine(_out, "study");
        var code = CommandLine.Run(new[]
        {
            "--synthetic", "--methods", "map", "laplace-kfac-lin", "laplace-kfac-lin-ml", "--laplace-layers", "all", "--temperatures", "1",
            "--epochs", "1", "--train-size", "256", "--test-size", "64", "--batch-size", "64", "--widths", "4,8,16", "--threads", "1", "-o", output,
        }, console);
        Assert.That(code, Is.EqualTo(0), text.ToString());
        var csv = File.ReadAllLines(Path.Combine(output, "latest", "results.csv"));
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "map", "laplace-kfac-lin", "laplace-kfac-lin-ml" }));
        foreach (var line in csv.Skip(1))
            Assert.That(line.Split(',').Skip(4).Take(4).Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)),
                Has.All.Matches<double>(double.IsFinite), line);
    }

    [Test]
    public void ReduceConvolutionFactorsAreFittedAndRecorded()
    {
        var weights = Weights(16);
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        var args = new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "--tune", "ml", "--conv-factors", "reduce", "-o", Path.Combine(_out, "runs") };
        Assert.That(CommandLine.Run(args, console, error), Is.EqualTo(0), error + text.ToString());
        var run = new DirectoryInfo(Path.Combine(_out, "runs", "latest")).ResolveLinkTarget(true)!.FullName;
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        Assert.That(metrics.RootElement.GetProperty("conv_factors").GetString(), Is.EqualTo("reduce"));
        Assert.That(metrics.RootElement.GetProperty("results").EnumerateArray().All(r => double.IsFinite(r.GetProperty("nll").GetDouble())));

        args[^3] = "sideways";
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console, error = new StringWriter()), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--conv-factors"));
    }

    [Test]
    public void CorrectedEigenvaluesFollowAFitOrAReusedOneAndAreRecorded()
    {
        var weights = Weights(16);
        var runs = Path.Combine(_out, "runs");
        string[] Args(params string[] extra) =>
            new[] { "laplace", "--weights", weights, "--widths", "4,8,16", "--tiny", "--synthetic", "--threads", "1", "-o", runs }.Concat(extra).ToArray();
        JsonElement Run(params string[] extra)
        {
            var (console, text) = TestConsole.Recorder();
            var error = new StringWriter();
            Assert.That(CommandLine.Run(Args(extra), console, error), Is.EqualTo(0), error + text.ToString());
            using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(LatestRun(runs), "metrics.json")));
            return metrics.RootElement.Clone();
        }
        var kfac = Run();
        var plain = Path.Combine(LatestRun(runs), "kfac.state");
        Assert.That(kfac.GetProperty("eigenvalues").GetString(), Is.EqualTo("kfac"));

        var reused = Run("--fit-from", plain, "--eigenvalues", "corrected");
        var corrected = Path.Combine(LatestRun(runs), "kfac.state");
        Assert.That(File.Exists(corrected), "the corrected state is written to the new run");
        Assert.That(reused.GetProperty("eigenvalues").GetString(), Is.EqualTo("corrected"));
        Assert.That(reused.GetProperty("correction_seconds").GetDouble(), Is.GreaterThan(0));
        var traces = reused.GetProperty("curvature_trace");
        Assert.That(traces.EnumerateObject().Select(t => t.Name), Is.EqualTo(new[] { "conv1", "conv2", "fc1", "fc2" }));
        Assert.That(traces.EnumerateObject().All(t => t.Value.GetProperty("corrected").GetDouble() > 0 &&
            t.Value.GetProperty("corrected").GetDouble() != t.Value.GetProperty("kfac").GetDouble()));
        Assert.That(reused.GetProperty("log_evidence").GetDouble(), Is.Not.EqualTo(kfac.GetProperty("log_evidence").GetDouble()));
        Assert.That(StateFile.Load<KfacLaplaceState>(corrected).IsCorrected);
        var posterior = WeightsFile.Load(Path.Combine(LatestRun(runs), "posterior.safetensors"));
        Assert.That(posterior["kfac/fc1/eigenvalues"].shape, Is.EqualTo(new long[] { 16, 8 * 7 * 7 + 1 }));

        // The pass after a fresh fit draws the same labels as after the reused one: the same corrections.
        var fresh = Run("--eigenvalues", "corrected");
        Assert.That(fresh.GetProperty("log_evidence").GetDouble(), Is.EqualTo(reused.GetProperty("log_evidence").GetDouble()));
        Assert.That(fresh.GetProperty("results").ToString(), Is.EqualTo(reused.GetProperty("results").ToString()));
        // A corrected state is reused as is, or read with the factors' own eigenvalues when --eigenvalues kfac asks.
        var again = Run("--fit-from", corrected, "--eigenvalues", "corrected");
        Assert.That(again.GetProperty("correction_seconds").GetDouble(), Is.EqualTo(0));
        Assert.That(again.GetProperty("log_evidence").GetDouble(), Is.EqualTo(reused.GetProperty("log_evidence").GetDouble()));
        Assert.That(File.Exists(Path.Combine(LatestRun(runs), "kfac.state")), Is.False);
        var back = Run("--fit-from", corrected);
        Assert.That(back.GetProperty("log_evidence").GetDouble(), Is.EqualTo(kfac.GetProperty("log_evidence").GetDouble()));

        var bad = new StringWriter();
        Assert.That(CommandLine.Run(Args("--eigenvalues", "exact"), TestConsole.Recorder().Console, bad), Is.EqualTo(2));
        Assert.That(bad.ToString(), Does.Contain("--eigenvalues").And.Contain("exact"));
    }
}
