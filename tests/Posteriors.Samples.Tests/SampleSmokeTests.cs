using System.Globalization;
using System.Text.Json;
using Posteriors.Samples.BayesianLora;
using Posteriors.Samples.ContinualLearning;

namespace Posteriors.Samples.Tests;

/// <summary>Each sample end to end on a seconds-long configuration: it runs, writes its results, and the numbers are sane.</summary>
[NonParallelizable]
public class SampleSmokeTests
{
    private string _out = null!;

    [SetUp]
    public void CreateOutput() => _out = Path.Combine(Path.GetTempPath(), "posteriors-samples-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteOutput()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    /// <summary>The run folder the last run wrote (every run gets its own; "latest" points at the newest).</summary>
    private string Run => Path.Combine(_out, "latest");

    private string[] RunFolders() => Directory.Exists(_out)
        ? Directory.GetDirectories(_out).Where(d => Path.GetFileName(d) != "latest").ToArray()
        : Array.Empty<string>();

    private static double[] Column(string csv, string name)
    {
        var lines = File.ReadAllLines(csv);
        var index = Array.IndexOf(lines[0].Split(','), name);
        Assert.That(index, Is.GreaterThanOrEqualTo(0), $"column {name} in {csv}");
        return lines.Skip(1).Select(l => double.Parse(l.Split(',')[index], CultureInfo.InvariantCulture)).ToArray();
    }

    [Test]
    public void SplitFashionMnistRunsEveryMethodOnTheSyntheticStandIn()
    {
        var code = ContinualLearningApp.Run(new[] { "--tiny", "--part", "fmnist", "--train-per-task", "64", "--test-per-task", "64", "--threads", "1", "--output", _out });
        Assert.That(code, Is.EqualTo(0));
        var accuracy = Column(Path.Combine(Run, "fmnist_accuracy.csv"), "accuracy");
        // 4 methods × (1 + 2 + 3 + 4 + 5) (episode, earlier-or-current task) pairs.
        Assert.That(accuracy, Has.Length.EqualTo(4 * 15));
        Assert.That(accuracy, Has.All.InRange(0.0, 1.0));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(Run, "fmnist_summary.json")));
        Assert.That(summary.RootElement.GetProperty("methods").EnumerateArray().Select(m => m.GetProperty("method").GetString()),
            Is.EqualTo(new[] { "SGD", "Laplace", "EKF", "VI" }));
        foreach (var png in new[] { "fmnist_average.png", "fmnist_SGD.png", "fmnist_Laplace.png", "fmnist_EKF.png", "fmnist_VI.png" })
            Assert.That(new FileInfo(Path.Combine(Run, png)).Length, Is.GreaterThan(1000), png);
        Assert.That(Path.Combine(Run, "checkpoints", "fmnist", "Laplace", "episode-4.state"), Does.Exist);
    }

    [Test]
    public void ContinualLoraRunsEveryLambdaAndResumesFromItsCheckpoints()
    {
        string[] args = { "--tiny", "--part", "text", "--max-chars", "400", "--steps", "3", "--pretrain-steps", "3", "--threads", "1", "--output", _out };
        Assert.That(ContinualLearningApp.Run(args), Is.EqualTo(0));
        var csv = Path.Combine(Run, "text_heldout_loss.csv");
        var loss = Column(csv, "heldout_loss");
        Assert.That(loss, Has.Length.EqualTo(3 * 4 * 4));   // λ ∈ {0, 1, 100} × episodes × books
        // Above 0 and below ln(vocabulary) + a margin: a barely trained character model is near uniform guessing.
        Assert.That(loss, Has.All.GreaterThan(0.5).And.All.LessThan(6.0));
        Assert.That(new FileInfo(Path.Combine(Run, "text_earlier_books.png")).Length, Is.GreaterThan(1000));
        var first = File.ReadAllText(csv);

        // Resuming reloads every episode's Laplace-as-prior state instead of training: the same numbers come out.
        File.Delete(csv);
        Assert.That(ContinualLearningApp.Run(args.Append("--resume").ToArray()), Is.EqualTo(0));
        Assert.That(File.ReadAllText(csv), Is.EqualTo(first));
    }

    [Test]
    public void BayesianLoraReportsUncertaintySplitAndAuroc()
    {
        var code = BayesianLoraApp.Run(new[] { "--tiny", "--max-chars", "400", "--steps", "3", "--pretrain-steps", "3", "--threads", "1", "--output", _out });
        Assert.That(code, Is.EqualTo(0));
        var csv = Path.Combine(Run, "statements.csv");
        var total = Column(csv, "total");
        var aleatoric = Column(csv, "aleatoric");
        var epistemic = Column(csv, "epistemic");
        Assert.That(total.Length, Is.GreaterThan(10));
        for (var i = 0; i < total.Length; i++)
        {
            Assert.That(epistemic[i], Is.GreaterThanOrEqualTo(-1e-5), "mutual information is non-negative");
            Assert.That(total[i], Is.EqualTo(aleatoric[i] + epistemic[i]).Within(1e-4));
        }
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(Run, "summary.json")));
        var results = summary.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.That(results.Select(r => r.GetProperty("method").GetString()).Distinct().Count(), Is.EqualTo(3));
        foreach (var r in results.Where(r => r.GetProperty("set").GetString() != "held-out (ID)"))
            Assert.That(r.GetProperty("aurocEpistemic").GetDouble(), Is.InRange(0.0, 1.0));
    }

    [Test]
    public void BayesianLoraNamesItsPlotsAfterItsMethods()
    {
        Assert.That(BayesianLoraApp.Run(new[] { "--tiny", "--max-chars", "400", "--steps", "2", "--pretrain-steps", "2", "--threads", "1", "--output", _out }), Is.EqualTo(0));
        Assert.That(Directory.GetFiles(Run, "*.png").Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "epistemic_deep-ensemble.png", "epistemic_unbiased-ensemble.png", "epistemic_diagonal-vi.png" }));
    }

    [Test]
    public void ARerunGetsItsOwnRunFolderAndResumeContinuesTheLatest()
    {
        string[] args = { "--tiny", "--part", "fmnist", "--train-per-task", "32", "--test-per-task", "32", "--threads", "1", "--no-plots", "--output", _out };
        Assert.That(ContinualLearningApp.Run(args), Is.EqualTo(0));
        var first = new DirectoryInfo(Run).ResolveLinkTarget(true)!.FullName;
        var firstCsv = File.ReadAllText(Path.Combine(first, "fmnist_accuracy.csv"));
        Assert.That(ContinualLearningApp.Run(args), Is.EqualTo(0));
        var runs = RunFolders();
        Assert.That(runs, Has.Length.EqualTo(2), "two runs, two run folders");
        var second = runs.Single(r => Path.GetFullPath(r) != first);
        Assert.That(new DirectoryInfo(Run).ResolveLinkTarget(true)!.FullName, Is.EqualTo(Path.GetFullPath(second)), "latest points at the newest");
        Assert.That(File.ReadAllText(Path.Combine(first, "fmnist_accuracy.csv")), Is.EqualTo(firstCsv), "the first run's results are untouched");
        Assert.That(Directory.GetFiles(second, "*.png"), Is.Empty, "--no-plots writes no plots");
        Assert.That(Directory.GetFiles(second, "*.tmp*"), Is.Empty, "no temporary files are left");

        Assert.That(ContinualLearningApp.Run(args.Append("--resume").ToArray()), Is.EqualTo(0));
        Assert.That(RunFolders(), Has.Length.EqualTo(2), "--resume continues the latest run folder");
    }

    private static (int Code, string Error) WithStderr(Func<int> run)
    {
        var previous = Console.Error;
        var error = new StringWriter();
        Console.SetError(error);
        try
        {
            return (run(), error.ToString());
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    [TestCase("--lambda", "3", "--lambda")]
    [TestCase("--epochs", "0", "--epochs")]
    [TestCase("--threads", "-4", "--threads")]
    [TestCase("--threads", "0", "--threads")]
    [TestCase("--seeds", "x", "'x'")]
    [TestCase("--device", "tpu", "'tpu'")]
    [TestCase("--device", "cuda", "CUDA is not available")]
    [TestCase("--data", "/nonexistent", "'/nonexistent'")]
    [TestCase("--books", "Apache-2.0,Nope", "'Nope'")]
    [TestCase("--lambdas", "-1", "--lambdas")]
    public void BadOptionsEndWithOneLineAndExitCodeTwoBeforeAnyWork(string option, string value, string expected)
    {
        var (code, error) = WithStderr(() => ContinualLearningApp.Run(new[] { "--tiny", "--part", "text", "--output", _out, option, value }));
        Assert.That(code, Is.EqualTo(2), error);
        Assert.That(error.Trim(), Does.Contain(expected).And.Not.Contain("\n"));
        Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(RunFolders(), Is.Empty, "no run folder before the options are checked");
    }

    [Test]
    public void AnUnusableOutputIsReportedBeforeTraining()
    {
        Directory.CreateDirectory(_out);
        var file = Path.Combine(_out, "a-file");
        File.WriteAllText(file, "");
        var (code, error) = WithStderr(() => BayesianLoraApp.Run(new[] { "--tiny", "--output", file }));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--output").And.Contain("a-file"));
        var (code2, error2) = WithStderr(() => BayesianLoraApp.Run(new[] { "--tiny", "-k", "0", "--output", _out }));
        Assert.That(code2, Is.EqualTo(2));
        Assert.That(error2, Does.Contain("--members").And.Contain("0"));
        var (code3, error3) = WithStderr(() => BayesianLoraApp.Run(new[] { "--tiny", "--resume", "--output", Path.Combine(_out, "empty") }));
        Assert.That(code3, Is.EqualTo(2));
        Assert.That(error3, Does.Contain("--resume"));
    }
}
