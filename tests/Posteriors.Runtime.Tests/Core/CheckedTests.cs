using System.Diagnostics;
using static TorchSharp.torch;

namespace Posteriors.Tests.Core;

public class CheckedTests
{
    [TestCase(new long[] { 3 }, new long[] { 3 }, new long[0])]
    [TestCase(new long[] { 2, 3 }, new long[] { 3 }, new long[] { 2 })]
    [TestCase(new long[] { 3 }, new long[] { 3, 4 }, new long[] { 4 })]
    [TestCase(new long[] { 2, 3 }, new long[] { 3, 4 }, new long[] { 2, 4 })]
    [TestCase(new long[] { 5, 2, 3 }, new long[] { 3, 4 }, new long[] { 5, 2, 4 })]
    [TestCase(new long[] { 5, 1, 2, 3 }, new long[] { 7, 3, 4 }, new long[] { 5, 7, 2, 4 })]
    [TestCase(new long[] { 3 }, new long[] { 6, 3, 4 }, new long[] { 6, 4 })]
    public void MatMulAgreesWithTorchOnEveryValidShape(long[] a, long[] b, long[] expected)
    {
        var g = new Generator(3);
        var x = randn(a, dtype: ScalarType.Float64, generator: g);
        var y = randn(b, dtype: ScalarType.Float64, generator: g);
        var result = Checked.MatMul(x, y);
        Assert.That(result.shape, Is.EqualTo(expected));
        Assert.That(result.eq(x.matmul(y)).all().item<bool>(), Is.True);
    }

    [TestCase(new long[] { 2, 3 }, new long[] { 4, 5 }, "[2, 3] and [4, 5]", "(3)", "(4)")]
    [TestCase(new long[] { 3 }, new long[] { 4 }, "[3] and [4]", "(3)", "(4)")]
    [TestCase(new long[] { 2, 3 }, new long[] { 4 }, "[2, 3] and [4]", "(3)", "(4)")]
    [TestCase(new long[] { 2, 2, 3 }, new long[] { 5, 3, 4 }, "[2, 2, 3] and [5, 3, 4]", "[2]", "[5]")]
    [TestCase(new long[0], new long[] { 3 }, "[] and [3]", "at least one dimension", "matmul")]
    public void MismatchedShapesThrowNamingTheOperationAndTheShapes(long[] a, long[] b, string shapes, string part1, string part2)
    {
        var e = Assert.Throws<ArgumentException>(() => Checked.MatMul(ones(a), ones(b)));
        Assert.That(e!.Message, Does.StartWith("matmul of shapes " + shapes).And.Contain(part1).And.Contain(part2));
    }

    [Test]
    public void MismatchedDtypesThrowInsteadOfAborting()
    {
        var e = Assert.Throws<ArgumentException>(() => Checked.MatMul(ones(2, 3), ones(new long[] { 3, 4 }, dtype: ScalarType.Float64)));
        Assert.That(e!.Message, Does.Contain("dtypes").And.Contain("Float32").And.Contain("Float64"));
    }

    /// <summary>
    /// Why the guard exists: the same mistake in a raw <c>matmul</c> ends the process (TorchSharp's native matmul has no
    /// error catch), while <c>mm</c> and the checked call fail with a .NET exception. Runs in child processes.
    /// </summary>
    [TestCase("matmul", false)]
    [TestCase("mm", true)]
    [TestCase("checked-matmul", true)]
    public void OnlyTheRawMatMulEndsTheProcess(string operation, bool catchable)
    {
        var (code, output) = RunProbe(operation);
        if (catchable)
        {
            Assert.That(code, Is.EqualTo(1), output);
            if (operation == "checked-matmul") Assert.That(output, Does.Contain("ArgumentException: matmul of shapes [2, 3] and [4, 5]"));
        }
        else
        {
            Assert.That(code, Is.Not.EqualTo(0).And.Not.EqualTo(1), output);
            Assert.That(output, Does.Contain("c10::Error"));
        }
    }

    private static (int Code, string Output) RunProbe(string operation)
    {
        // tests/Posteriors.Runtime.Tests/bin/<Configuration>/<framework>/ → tests/Posteriors.NativeProbe/bin/<Configuration>/<framework>/
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration, tests) = (here.Name, here.Parent!.Name, here.Parent.Parent!.Parent!.Parent!.FullName);
        var probe = Path.Combine(tests, "Posteriors.NativeProbe", "bin", configuration, framework, "Posteriors.NativeProbe.dll");
        Assert.That(File.Exists(probe), Is.True, probe);
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(probe);
        start.ArgumentList.Add(operation);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            Assert.Fail($"the probe ({operation}) did not finish in 2 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
