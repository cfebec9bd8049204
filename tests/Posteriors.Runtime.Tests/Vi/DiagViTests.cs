using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Tests.Curvature;
using Posteriors.Trees;
using Posteriors.Vi;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Vi;

public class DiagViTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void ConvergesToASmallGaussianTarget(bool stickingTheLanding)
    {
        // docs/ALGORITHMS.md §7: 1,000 Adam steps at 1e-2 with 2 samples; means and sds within 0.5.
        var (logPosterior, mean, sd, init) = ViTestTargets.Diagonal();
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(lr: 1e-2), samples: 2, stickingTheLanding: stickingTheLanding);
        var state = vi.Run(vi.Init(init, seed: 4), Enumerable.Repeat(0, 1000));
        Assert.That(state.Step, Is.EqualTo(1000));
        Assert.That(TestModels.MaxDiff(state.Params.Flatten(), mean.Flatten()), Is.LessThan(0.5));
        Assert.That(TestModels.MaxDiff(DiagVi.Sd(state).Flatten(), sd.Flatten()), Is.LessThan(0.5));
        Assert.That(state.Nelbo.item<double>(), Is.LessThan(1.0), "the NELBO approaches 0 (= KL(q ‖ target)) from above");
    }

    [Test]
    public void NelboIsZeroWhenQIsTheTarget()
    {
        // log π − log q vanishes pointwise when q equals the normalised target, so every sample contributes 0.
        var (logPosterior, mean, sd, _) = ViTestTargets.Diagonal();
        var nelbo = DiagVi.Nelbo(logPosterior, mean, sd.Map(t => t.log()), 0, samples: 1000, seed: 2).item<double>();
        Assert.That(Math.Abs(nelbo), Is.LessThan(1e-4));
        var wider = DiagVi.Nelbo(logPosterior, mean, sd.Map(t => t.log() + 0.5), 0, samples: 1000, seed: 2).item<double>();
        Assert.That(wider, Is.GreaterThan(0.1), "any other q has a positive NELBO (KL > 0)");
    }

    [Test]
    public void SampleReproducesMeanAndSdOfEveryShape()
    {
        var (logPosterior, mean, sd, _) = ViTestTargets.Diagonal();
        var vi = DiagVi.Build(logPosterior, Optimizer.Sgd(1e-3));
        var state = vi.Init(mean);
        using (no_grad()) state.LogSd.CopyFrom(sd.Map(t => t.log()));
        var draws = vi.Sample(state, 10_000, seed: 9);
        Assert.That(draws["w"].shape, Is.EqualTo(new long[] { 10_000, 2, 2 }));
        // sd ≤ 1.5: mean SE ≤ 0.015, sd SE ≤ 1.5/sqrt(2·10⁴) ≈ 0.011; 0.1 is > 6 standard errors.
        foreach (var name in mean.Names)
        {
            Assert.That(TestModels.MaxDiff(draws[name].mean(new long[] { 0 }), mean[name]), Is.LessThan(0.1), name);
            Assert.That(TestModels.MaxDiff(draws[name].std(0), sd[name]), Is.LessThan(0.1), name);
        }
    }

    [Test]
    public void InPlaceAndCopyingUpdatesAreBitIdentical()
    {
        var (logPosterior, _, _, init) = ViTestTargets.Diagonal();
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(lr: 1e-2), samples: 2, temperature: Schedule.Of(t => 1.0 / (1 + t)));
        var a = vi.Init(init, seed: 1);
        var b = vi.Init(init, seed: 1);
        for (var i = 0; i < 5; i++)
        {
            a = vi.Update(a, 0, inplace: true);
            var before = b.Params.Clone();
            var next = vi.Update(b, 0);
            Assert.That(TestModels.Same(b.Params.Flatten(), before.Flatten()), Is.True, "copying left the old state untouched");
            b = next;
        }
        TensorAssert.Same(a.Params.Flatten(), b.Params.Flatten());
        TensorAssert.Same(a.LogSd.Flatten(), b.LogSd.Flatten());
        TensorAssert.Same(a.Nelbo, b.Nelbo);
    }

    [Test]
    public void SaveLoadRoundTripResumesIdenticallyWithTheOptimizerState()
    {
        var (logPosterior, _, _, init) = ViTestTargets.Diagonal();
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(lr: 1e-2));
        var state = vi.Run(vi.Init(init, seed: 3), Enumerable.Repeat(0, 3));
        var path = Path.Combine(Path.GetTempPath(), $"diagvi-{Guid.NewGuid():N}.pst");
        try
        {
            StateFile.Save(path, state);
            var loaded = StateFile.Load<DiagViState>(path);
            var resumed = vi.Run(loaded, Enumerable.Repeat(0, 3));
            var uninterrupted = vi.Run(state, Enumerable.Repeat(0, 3));
            TensorAssert.Same(resumed.Params.Flatten(), uninterrupted.Params.Flatten());
            TensorAssert.Same(resumed.LogSd.Flatten(), uninterrupted.LogSd.Flatten());
            Assert.That(resumed.Seed, Is.EqualTo(3));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TemperatureZeroIsNoisyMapWithoutEntropy()
    {
        // At T = 0 the entropy term is gone: σ is pushed to 0 and μ to the mode.
        var (logPosterior, mean, _, init) = ViTestTargets.Diagonal();
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(lr: 5e-2), temperature: 0.0);
        var state = vi.Run(vi.Init(init), Enumerable.Repeat(0, 600));
        Assert.That(TestModels.MaxDiff(state.Params.Flatten(), mean.Flatten()), Is.LessThan(0.1));
        Assert.That(DiagVi.Sd(state).Flatten().max().item<double>(), Is.LessThan(0.2));
    }

    [Test]
    public void BadHyperparametersAndNonFiniteValuesGiveClearExceptions()
    {
        var (logPosterior, _, _, init) = ViTestTargets.Diagonal();
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DiagVi.Build(logPosterior, Optimizer.Adam(), samples: 0))!.ParamName, Is.EqualTo("samples"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DiagVi.Build(logPosterior, Optimizer.Adam(), temperature: -1.0))!.ParamName, Is.EqualTo("temperature"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DiagVi.Build(logPosterior, Optimizer.Adam(), initLogSd: double.NaN))!.ParamName, Is.EqualTo("initLogSd"));
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(), temperature: Schedule.Of(t => t == 0 ? double.NaN : 1));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => vi.Update(vi.Init(init), 0))!.Message, Does.Contain("temperature"));
        var nan = DiagVi.Build<int>((p, _) => p.SumOfGrad() * double.NaN, Optimizer.Adam());
        Assert.Throws<NonFiniteException>(() => nan.Update(nan.Init(init), 0));
    }
}

internal static class TreeTestExtensions
{
    public static Tensor SumOfGrad(this ParameterTree p) => p.SumOf(t => t);
}
