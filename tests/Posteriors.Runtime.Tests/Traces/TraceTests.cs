using Posteriors.Traces;
using Posteriors.Tests.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Traces;

public class TraceTests
{
    private static ParameterTree At(long step) => ParameterTree.From(("w", full(new long[] { 2, 2 }, (double)step)), ("b", tensor(new[] { -step * 1.0 })));

    [Test]
    public void BurnInAndThinningKeepTheRightSteps()
    {
        using var trace = new Trace(burnIn: 10, thin: 3);
        for (long step = 1; step <= 25; step++) trace.Record(At(step), step);
        Assert.That(trace.Samples.Select(s => s["b"].item<double>()), Is.EqualTo(new[] { -13.0, -16, -19, -22, -25 }));
        Assert.That(trace.Count, Is.EqualTo(5));
        Assert.That(trace.Moments!.Mean.Str(), Is.EqualTo(tensor(new[] { 19.0, 19, 19, 19, -19 }).Str()));
    }

    [Test]
    public void StreamingToDiskGivesTheSameSamplesAndMoments()
    {
        var path = Path.Combine(Path.GetTempPath(), $"trace-{Guid.NewGuid():N}.bin");
        try
        {
            using var memory = new Trace(burnIn: 2, moments: true);
            using var disk = new Trace(burnIn: 2, path: path, moments: true);
            var g = new Generator(3);
            for (long step = 1; step <= 12; step++)
            {
                var sample = ParameterTree.From(("w", randn(new long[] { 2, 3 }, generator: g)), ("b", randn(new long[] { 1 }, dtype: ScalarType.Float64, generator: g)));
                memory.Record(sample, step);
                disk.Record(sample, step);
            }
            var fromDisk = disk.ReadSamples().ToArray();
            Assert.That(fromDisk, Has.Length.EqualTo(10));
            for (var i = 0; i < 10; i++)
                foreach (var name in new[] { "w", "b" })
                    Assert.That(fromDisk[i][name].Same(memory.Samples[i][name]), Is.True, $"sample {i}, {name}");
            Assert.Throws<InvalidOperationException>(() => _ = disk.Samples);
            TensorAssert.Close(disk.Moments!.Covariance, memory.Moments!.Covariance);
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void RunningMomentsMergedInBatchesEqualTheDirectEstimates()
    {
        var x = randn(new long[] { 500, 4 }, dtype: ScalarType.Float64, generator: new Generator(5)) * tensor(new[] { 1.0, 2.0, 0.5, 3.0 }) + 7.0;
        using var full = new RunningMoments(fullCovariance: true);
        using var diagonal = new RunningMoments();
        foreach (var chunk in x.split(new long[] { 1, 99, 150, 250 }))
        {
            full.AddRows(chunk);
            diagonal.AddRows(chunk);
        }
        var centred = x - x.mean(new long[] { 0 });
        var covariance = centred.t().matmul(centred) / 499.0;
        Assert.That(full.Count, Is.EqualTo(500));
        TensorAssert.Close(full.Mean, x.mean(new long[] { 0 }), rtol: 1e-12, atol: 1e-12);
        TensorAssert.Close(full.Covariance, covariance, rtol: 1e-10, atol: 1e-12);
        TensorAssert.Close(diagonal.Variance, covariance.diagonal(), rtol: 1e-10, atol: 1e-12);
        Assert.Throws<InvalidOperationException>(() => _ = diagonal.Covariance);
        Assert.Throws<ArgumentException>(() => full.AddRows(zeros(3, 5)));
    }

    [Test]
    public void PredictiveAveragesOverSamples()
    {
        var samples = new[] { 0.0, 1.0, 2.0 }.Select(v => ParameterTree.From(("bias", tensor(new[] { v, 0.0 })))).ToArray();
        var probabilities = Predictive.AverageProbabilities(samples, p => p["bias"].unsqueeze(0));
        var expected = (samples.Select(s => s["bias"].softmax(0)).Aggregate((a, b) => a + b) / 3).unsqueeze(0);
        TensorAssert.Close(probabilities, expected);
        Assert.That(Predictive.Average(samples, p => p["bias"]).Str(), Is.EqualTo(tensor(new[] { 1.0, 0.0 }).Str()));
        Assert.Throws<ArgumentException>(() => Predictive.Average(Array.Empty<ParameterTree>(), p => p["bias"]));
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Trace(burnIn: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Trace(thin: 0));
    }
}
