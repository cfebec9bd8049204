using System.Diagnostics;
using System.Text.Json;
using Posteriors.Cli.Study;
using Spectre.Console;
using CommandLine = Posteriors.Cli.Commands.Cli;

namespace Posteriors.Samples.Tests.Cli;

/// <summary>The study as a careful user meets it: option errors, run folders, resume after a kill, Ctrl-C, plain tables.</summary>
[NonParallelizable]
public class StudyCliTests
{
    private static readonly string[] Tiny = { "--tiny", "--synthetic", "--threads", "1" };

    private string _out = null!;

    [SetUp]
    public void CreateOutput() => _out = Path.Combine(Path.GetTempPath(), "posteriors-cli-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void DeleteOutput()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    private string[] RunFolders() => Directory.Exists(_out)
        ? Directory.GetDirectories(_out).Where(d => Path.GetFileName(d) != "latest").Order().ToArray()
        : Array.Empty<string>();

    private string Latest => new DirectoryInfo(Path.Combine(_out, "latest")).ResolveLinkTarget(true)!.FullName;

    [TestCase("--epochs", "0", "--epochs", "0")]
    [TestCase("--epochs", "abc", "--epochs", "'abc' for option '--epochs' as an integer")]
    [TestCase("--sgd-lr", "fast", "--sgd-lr", "'fast' for option '--sgd-lr' as a number")]
    [TestCase("-k", "0", "--members", "0")]
    [TestCase("--threads", "0", "--threads", "0")]
    [TestCase("--threads", "-4", "--threads", "-4")]
    [TestCase("--batch-size", "0", "--batch-size", "0")]
    [TestCase("--data", "/nonexistent", "--data", "'/nonexistent'")]
    [TestCase("--device", "tpu", "--device", "'tpu'")]
    [TestCase("--device", "cuda", "--device cuda", "CUDA is not available")]
    [TestCase("--methods", "nope", "--methods", "'nope'")]
    [TestCase("--temperatures", "0", "--temperatures", "0")]
    [TestCase("--widths", "4,8", "--widths", "'4,8'")]
    [TestCase("--sgd-lr", "0", "--sgd-lr", "0")]
    [TestCase("--laplace-layers", "every", "--laplace-layers", "'every'")]
    [TestCase("--seeds", "1x", "--seeds", "'1x'")]
    [TestCase("--output", "/proc/posteriors-test", "--output", "'/proc/posteriors-test'")]
    [TestCase("--resume", null, "--resume", "no earlier run")]
    public void BadInputIsOneLineNamingTheOptionAndTheValueWithExitCodeTwoBeforeAnyWork(string option, string? value, string name, string shown)
    {
        var (console, text) = TestConsole.Recorder();
        var error = new StringWriter();
        var args = new[] { "--synthetic" }.Concat(option == "--output" ? Array.Empty<string>() : new[] { "--output", _out }).Append(option).Concat(value is null ? Array.Empty<string>() : new[] { value }).ToArray();
        Assert.That(CommandLine.Run(args, console, error), Is.EqualTo(2), error.ToString());
        var lines = error.ToString().TrimEnd().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1), error.ToString());
        Assert.That(lines[0], Does.Contain(name).And.Contain(shown));
        Assert.That(text.ToString(), Does.Not.Contain("Cold-posterior"), "nothing ran");
        Assert.That(RunFolders(), Is.Empty, "no run folder was made");
    }

    [Test]
    public void AFileAsOutputIsRefusedBeforeTraining()
    {
        Directory.CreateDirectory(_out);
        var file = Path.Combine(_out, "results.csv");
        File.WriteAllText(file, "keep me");
        var error = new StringWriter();
        Assert.That(CommandLine.Run(Tiny.Concat(new[] { "-o", file }).ToArray(), TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--output").And.Contain("is a file"));
        Assert.That(File.ReadAllText(file), Is.EqualTo("keep me"));
    }

    [Test]
    public void EveryRunGetsItsOwnFolderSoNothingIsReplaced()
    {
        var args = Tiny.Concat(new[] { "--methods", "map", "ensemble", "-o", _out }).ToArray();
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console), Is.EqualTo(0));
        var first = Latest;
        var firstCsv = File.ReadAllText(Path.Combine(first, "results.csv"));
        Assert.That(Directory.GetFiles(first, "*.png"), Has.Length.EqualTo(3));

        Assert.That(CommandLine.Run(args.Append("--no-plots").ToArray(), TestConsole.Recorder().Console), Is.EqualTo(0));
        Assert.That(RunFolders(), Has.Length.EqualTo(2));
        var second = Latest;
        Assert.That(second, Is.Not.EqualTo(first), "latest points at the new run");
        Assert.That(File.ReadAllText(Path.Combine(first, "results.csv")), Is.EqualTo(firstCsv), "the first run is untouched");
        Assert.That(Directory.GetFiles(first, "*.png"), Has.Length.EqualTo(3));
        Assert.That(Directory.GetFiles(second, "*.png"), Is.Empty, "--no-plots: no plots, so none can disagree with the CSV");
        Assert.That(Directory.GetFiles(second, "*.tmp*", SearchOption.AllDirectories), Is.Empty, "atomic writes leave no temporary files");
    }

    [Test]
    public void AResumedFinishedRunReadsItsResultsBackAndRefusesOtherSettings()
    {
        var args = Tiny.Concat(new[] { "--methods", "map", "-o", _out }).ToArray();
        Assert.That(CommandLine.Run(args, TestConsole.Recorder().Console), Is.EqualTo(0));
        var csv = File.ReadAllText(Path.Combine(Latest, "results.csv"));
        var (console, text) = TestConsole.Recorder();
        Assert.That(CommandLine.Run(args.Append("--resume").ToArray(), console), Is.EqualTo(0));
        Assert.That(text.ToString(), Does.Contain("1 of 1 runs finished earlier"));
        Assert.That(File.ReadAllText(Path.Combine(Latest, "results.csv")), Is.EqualTo(csv), "read back, not retrained (same seconds column)");
        Assert.That(RunFolders(), Has.Length.EqualTo(1));

        var error = new StringWriter();
        Assert.That(CommandLine.Run(args.Concat(new[] { "--resume", "--epochs", "3" }).ToArray(), TestConsole.Recorder().Console, error), Is.EqualTo(2));
        Assert.That(error.ToString(), Does.Contain("--resume").And.Contain("Epochs 2 (now 3)"));
    }

    [Test]
    public void ATableTooWideForTheConsoleIsPrintedPlainWithoutSplittingNumbers()
    {
        var (console, text) = TestConsole.Recorder(width: 60);
        Assert.That(CommandLine.Run(Tiny.Concat(new[] { "--methods", "map", "--no-plots", "-o", _out }).ToArray(), console), Is.EqualTo(0));
        var lines = text.ToString().Split('\n');
        var header = lines.Single(l => l.StartsWith("method ", StringComparison.Ordinal));
        Assert.That(header, Does.Contain("acc %").And.Contain("NLL").And.Contain("AUROC"));
        var row = lines.Single(l => l.StartsWith("map ", StringComparison.Ordinal));
        var nll = File.ReadAllLines(Path.Combine(Latest, "results.csv"))[1].Split(',')[5];
        Assert.That(row, Does.Contain(double.Parse(nll, System.Globalization.CultureInfo.InvariantCulture).ToString("F4", System.Globalization.CultureInfo.InvariantCulture)),
            "the whole NLL on the row's one line");
        Assert.That(text.ToString(), Does.Not.Contain("│"), "no borders");
    }

    [Test]
    public void AtomicWritesReplaceWholeFilesOrNothing()
    {
        Directory.CreateDirectory(_out);
        var path = Path.Combine(_out, "results.csv");
        Posteriors.Samples.AtomicFile.WriteAllText(path, "first");
        Assert.Throws<IOException>(() => Posteriors.Samples.AtomicFile.Write(path, temp =>
        {
            File.WriteAllText(temp, "half");
            throw new IOException("disk full");
        }));
        Assert.That(File.ReadAllText(path), Is.EqualTo("first"), "a failed write leaves the old file");
        Assert.That(Directory.GetFiles(_out), Is.EqualTo(new[] { path }), "and no temporary file");
        Posteriors.Samples.AtomicFile.WriteAllText(path, "second");
        Assert.That(File.ReadAllText(path), Is.EqualTo("second"));
    }

    // ------------------------------------------------------------------ child processes

    private static string CliDll()
    {
        // tests/Posteriors.Models.Tests/bin/<Configuration>/<framework>/ → samples/Posteriors.Cli/bin/<Configuration>/<framework>/
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var repository = here.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(repository, "samples", "Posteriors.Cli", "bin", here.Parent.Name, here.Name, "Posteriors.Cli.dll");
        Assert.That(File.Exists(dll), Is.True, dll);
        return dll;
    }

    private sealed class Child : IDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stdout, _stderr;

        /// <param name="args">The CLI's arguments.</param>
        /// <param name="defaultSigint">
        /// Start the CLI with SIGINT at its default disposition (coreutils' <c>env --default-signal</c>, which then execs
        /// dotnet, so <see cref="Id"/> is still the CLI's): a suite run as a background job of a non-interactive shell
        /// inherits SIGINT ignored, an ignored signal stays ignored across exec, and the runtime leaves it so.
        /// </param>
        public Child(IEnumerable<string> args, bool defaultSigint = false)
        {
            var start = new ProcessStartInfo(defaultSigint ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            if (defaultSigint)
            {
                start.ArgumentList.Add("--default-signal=INT");
                start.ArgumentList.Add("dotnet");
            }
            start.ArgumentList.Add(CliDll());
            foreach (var a in args) start.ArgumentList.Add(a);
            _process = Process.Start(start)!;
            _stdout = _process.StandardOutput.ReadToEndAsync();
            _stderr = _process.StandardError.ReadToEndAsync();
        }

        public int Id => _process.Id;

        public bool HasExited => _process.HasExited;

        public (int Code, string Output) Wait(int seconds = 300)
        {
            if (!_process.WaitForExit(seconds * 1000))
            {
                _process.Kill(entireProcessTree: true);
                Assert.Fail($"the CLI did not finish in {seconds} s: {_stdout.Result}{_stderr.Result}");
            }
            return (_process.ExitCode, _stdout.Result + _stderr.Result);
        }

        public void Kill() => _process.Kill(entireProcessTree: true);

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    /// <summary>Waits (bounded) until <paramref name="path"/> exists or the child ends.</summary>
    private static bool WaitFor(Func<bool> condition, Child child, int seconds = 240)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            if (condition()) return true;
            if (child.HasExited) return false;
            Thread.Sleep(20);
        }
        return false;
    }

    private static string Comparable(string runJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(runJson));
        var result = doc.RootElement.GetProperty("Result").EnumerateObject().Where(p => p.Name != "Seconds").Select(p => $"{p.Name}={p.Value.GetRawText()}");
        return string.Join(";", result) + "|" + doc.RootElement.GetProperty("Reliability").GetRawText();
    }

    [Test]
    public void AStudyKilledMidRunAndResumedEqualsAnUninterruptedOneBitForBit()
    {
        string[] Args(string output) => Tiny.Concat(new[]
        {
            "--methods", "map", "ensemble", "sghmc-serial", "--temperatures", "1", "--epochs", "4", "--train-size", "2048", "--no-plots", "-o", output,
        }).ToArray();
        var whole = Path.Combine(_out, "whole");
        var killed = Path.Combine(_out, "killed");
        using (var child = new Child(Args(whole)))
            Assert.That(child.Wait().Code, Is.EqualTo(0));

        using (var child = new Child(Args(killed)))
        {
            // Killed (SIGKILL: no chance to clean up) once the ensemble has written its first epoch's checkpoint.
            var checkpoint = Path.Combine(killed, "latest", "checkpoints", "ensemble-seed0.state");
            Assert.That(WaitFor(() => File.Exists(checkpoint), child), Is.True, "the ensemble's first checkpoint appeared before the run ended");
            child.Kill();
            Assert.That(child.Wait().Code, Is.Not.EqualTo(0), "the child was killed, not finished");
        }
        Assert.That(File.Exists(Path.Combine(killed, "latest", "runs", "sghmc-serial-tau1-seed0.json")), Is.False, "the study was cut short");
        using (var child = new Child(Args(killed).Append("--resume")))
        {
            var (code, output) = child.Wait();
            Assert.That(code, Is.EqualTo(0), output);
            Assert.That(output, Does.Match("resuming: [12] of 3 runs finished earlier"), "the MAP run was read back");
        }

        var expected = Directory.GetFiles(Path.Combine(whole, "latest", "runs"), "*.json").Select(Path.GetFileName).Order().ToArray();
        Assert.That(Directory.GetFiles(Path.Combine(killed, "latest", "runs"), "*.json").Select(Path.GetFileName).Order(), Is.EqualTo(expected));
        Assert.That(expected, Has.Length.EqualTo(3));
        foreach (var name in expected)
            Assert.That(Comparable(Path.Combine(killed, "latest", "runs", name!)), Is.EqualTo(Comparable(Path.Combine(whole, "latest", "runs", name!))), name);
    }

    private const int SigInt = 2;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Test]
    public void CtrlCStopsAtACheckpointWritesThePartialTableAndSaysHowToResume()
    {
        var args = Tiny.Concat(new[] { "--methods", "map", "ensemble", "--epochs", "30", "--train-size", "2048", "--no-plots", "-o", _out }).ToArray();
        using var child = new Child(args, defaultSigint: true);
        var map = Path.Combine(_out, "latest", "runs", "map-seed0.json");
        var checkpoint = Path.Combine(_out, "latest", "checkpoints", "ensemble-seed0.state");
        // Signalled once the ensemble has written its first epoch's checkpoint: a signal between the two runs would
        // (rightly) stop the study before the ensemble starts and leave no checkpoint to test.
        Assert.That(WaitFor(() => File.Exists(map) && File.Exists(checkpoint), child), Is.True,
            "the MAP run and the ensemble's first epoch finished before the study ended");
        Assert.That(Kill(child.Id, SigInt), Is.EqualTo(0), "SIGINT sent");
        var (code, output) = child.Wait();
        Assert.That(code, Is.EqualTo(130), output);
        Assert.That(output, Does.Contain("Resume with: ./scripts/run.sh").And.Contain("--resume"));
        Assert.That(output, Does.Contain("map ").And.Contain("acc %"), "the partial table");
        var csv = File.ReadAllLines(Path.Combine(_out, "latest", "results.csv"));
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "map" }), "the finished run is kept");
        Assert.That(File.Exists(Path.Combine(_out, "latest", "runs", "ensemble-seed0.json")), Is.False, "the interrupted run is not reported as finished");
    }
}
