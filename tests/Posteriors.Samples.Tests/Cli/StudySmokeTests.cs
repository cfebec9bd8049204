using CommandLine = Posteriors.Cli.Commands.Cli;
using Posteriors.Cli.Study;
using Spectre.Console;

namespace Posteriors.Samples.Tests.Cli;

[NonParallelizable]
public class StudySmokeTests
{
    [Test]
    public void TinyStudyWritesTableCsvJsonAndPlots()
    {
        var output = Path.Combine(Path.GetTempPath(), "posteriors-study-" + Guid.NewGuid().ToString("N"));
        var (console, text) = TestConsole.Recorder();
        // System.CommandLine reports an unhandled exception on stderr and returns 1: keep it for the failure message.
        var previousError = Console.Error;
        var errors = new StringWriter();
        Console.SetError(errors);
        try
        {
            var code = CommandLine.Run(new[]
            {
                "--synthetic", "--methods", "map", "ensemble", "sghmc-parallel", "sghmc-serial", "vi-diag", "laplace-fisher", "laplace-ggn-lin",
                "--temperatures", "1", "--members", "2", "--epochs", "1", "--train-size", "512",
                "--test-size", "128", "--batch-size", "64", "--widths", "4,8,16", "--threads", "1", "-o", output,
            }, console);
            var log = text.ToString() + errors;
            Assert.That(code, Is.EqualTo(0), log);
            Assert.That(log, Does.Contain("SYNTHETIC"));
            Assert.That(log, Does.Contain("NLL").And.Contain("ECE").And.Contain("ensemble"));

            var run = Path.Combine(output, "latest");
            var csv = File.ReadAllLines(Path.Combine(run, "results.csv"));
            Assert.That(csv[0], Does.StartWith("method,tau,seed,members,accuracy,nll,ece"));
            Assert.That(csv.Skip(1).Select(l => l.Split(',')[0]),
                Is.EqualTo(new[] { "map", "ensemble", "sghmc-parallel", "sghmc-serial", "vi-diag", "laplace-fisher", "laplace-ggn-lin" }));
            Assert.That(csv[3].Split(',')[1], Is.EqualTo("1"), "tempered rows carry their τ");
            foreach (var line in csv.Skip(1))
                Assert.That(line.Split(',').Skip(4).Take(4).Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)),
                    Has.All.Matches<double>(double.IsFinite), line);
            var ensemble = csv[2].Split(',');
            Assert.That(int.Parse(ensemble[3]), Is.EqualTo(2));
            var accuracy = double.Parse(ensemble[4], System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(accuracy, Is.InRange(0.0, 1.0));

            var json = File.ReadAllText(Path.Combine(run, "results.json"));
            Assert.That(json, Does.Contain("\"summary\"").And.Contain("\"reliability\""));
            foreach (var png in new[] { "nll_vs_temperature.png", "accuracy_vs_temperature.png", "reliability.png" })
            {
                var bytes = File.ReadAllBytes(Path.Combine(run, png));
                Assert.That(bytes.Length, Is.GreaterThan(5000), png);
                Assert.That(bytes.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), png);
            }
        }
        finally
        {
            Console.SetError(previousError);
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Test]
    public void HelpExplainsTheOptions()
    {
        var previous = Console.Out;
        var help = new StringWriter();
        Console.SetOut(help);
        try
        {
            Assert.That(CommandLine.Run(new[] { "--help" }), Is.EqualTo(0));
        }
        finally
        {
            Console.SetOut(previous);
        }
        foreach (var option in new[] { "--methods", "--temperatures", "--epochs", "--seeds", "--device", "--output", "--full", "study", "regression" })
            Assert.That(help.ToString(), Does.Contain(option));
    }

    [Test]
    public void QuickAndFullModesResolveTheirDefaults()
    {
        var quick = new StudyOptions().Resolved();
        Assert.That(new StudyOptions { Tiny = true }.Resolved().TrainSize, Is.LessThan(quick.TrainSize!.Value));
        Assert.That(quick.Epochs, Is.GreaterThan(0));
        Assert.That(quick.TrainSize, Is.LessThan(60_000));
        var full = new StudyOptions { Full = true }.Resolved();
        Assert.That(full.TrainSize, Is.EqualTo(60_000));
        Assert.That(full.TestSize, Is.EqualTo(10_000));
        Assert.That(full.Temperatures, Is.EqualTo(new[] { 0.03, 0.1, 0.3, 1, 3 }));
        Assert.That(full.Methods, Is.EquivalentTo(MethodRegistry.All.Select(m => m.Name)));
    }
}
