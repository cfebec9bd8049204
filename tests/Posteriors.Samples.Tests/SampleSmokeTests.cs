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
        var code = ContinualLearningApp.Run(new[] { "--tiny", "--part", "fmnist", "--train-per-task", "64", "--test-per-task", "64", "--out", _out });
        Assert.That(code, Is.EqualTo(0));
        var accuracy = Column(Path.Combine(_out, "fmnist_accuracy.csv"), "accuracy");
        // 4 methods × (1 + 2 + 3 + 4 + 5) (episode, earlier-or-current task) pairs.
        Assert.That(accuracy, Has.Length.EqualTo(4 * 15));
        Assert.That(accuracy, Has.All.InRange(0.0, 1.0));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "fmnist_summary.json")));
        Assert.That(summary.RootElement.GetProperty("methods").EnumerateArray().Select(m => m.GetProperty("method").GetString()),
            Is.EqualTo(new[] { "SGD", "Laplace", "EKF", "VI" }));
        foreach (var png in new[] { "fmnist_average.png", "fmnist_SGD.png", "fmnist_Laplace.png", "fmnist_EKF.png", "fmnist_VI.png" })
            Assert.That(new FileInfo(Path.Combine(_out, png)).Length, Is.GreaterThan(1000), png);
        Assert.That(Path.Combine(_out, "checkpoints", "fmnist", "Laplace", "episode-4.state"), Does.Exist);
    }

    [Test]
    public void ContinualLoraRunsEveryLambdaAndResumesFromItsCheckpoints()
    {
        string[] args = { "--tiny", "--part", "text", "--max-chars", "400", "--steps", "3", "--pretrain-steps", "3", "--out", _out };
        Assert.That(ContinualLearningApp.Run(args), Is.EqualTo(0));
        var csv = Path.Combine(_out, "text_heldout_loss.csv");
        var loss = Column(csv, "heldout_loss");
        Assert.That(loss, Has.Length.EqualTo(3 * 4 * 4));   // λ ∈ {0, 1, 100} × episodes × books
        // Above 0 and below ln(vocabulary) + a margin: a barely trained character model is near uniform guessing.
        Assert.That(loss, Has.All.GreaterThan(0.5).And.All.LessThan(6.0));
        Assert.That(new FileInfo(Path.Combine(_out, "text_earlier_books.png")).Length, Is.GreaterThan(1000));
        var first = File.ReadAllText(csv);

        // Resuming reloads every episode's Laplace-as-prior state instead of training: the same numbers come out.
        File.Delete(csv);
        Assert.That(ContinualLearningApp.Run(args.Append("--resume").ToArray()), Is.EqualTo(0));
        Assert.That(File.ReadAllText(csv), Is.EqualTo(first));
    }

    [Test]
    public void BayesianLoraReportsUncertaintySplitAndAuroc()
    {
        var code = BayesianLoraApp.Run(new[] { "--tiny", "--max-chars", "400", "--steps", "3", "--pretrain-steps", "3", "--out", _out });
        Assert.That(code, Is.EqualTo(0));
        var csv = Path.Combine(_out, "statements.csv");
        var total = Column(csv, "total");
        var aleatoric = Column(csv, "aleatoric");
        var epistemic = Column(csv, "epistemic");
        Assert.That(total.Length, Is.GreaterThan(10));
        for (var i = 0; i < total.Length; i++)
        {
            Assert.That(epistemic[i], Is.GreaterThanOrEqualTo(-1e-5), "mutual information is non-negative");
            Assert.That(total[i], Is.EqualTo(aleatoric[i] + epistemic[i]).Within(1e-4));
        }
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "summary.json")));
        var results = summary.RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.That(results.Select(r => r.GetProperty("method").GetString()).Distinct().Count(), Is.EqualTo(3));
        foreach (var r in results.Where(r => r.GetProperty("set").GetString() != "held-out (ID)"))
            Assert.That(r.GetProperty("aurocEpistemic").GetDouble(), Is.InRange(0.0, 1.0));
    }

    [Test]
    public void UnknownOptionIsReportedByName()
    {
        var e = Assert.Throws<ArgumentException>(() => ContinualLearningApp.Run(new[] { "--tiny", "--lambda", "3" }));
        Assert.That(e!.Message, Does.Contain("--lambda"));
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => BayesianLoraApp.Run(new[] { "--members", "0" }));
        Assert.That(e2!.Message, Does.Contain("--members"));
    }
}
