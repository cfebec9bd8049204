using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

/// <summary>What every sampler promises: reproducible noise, bit-identical in-place/copying/resumed runs, clear errors.</summary>
public class SamplerContractTests
{
    private static readonly GaussianTarget Target = new(seed: 3);

    private static ParameterTree Start() => ParameterTree.From(
        ("theta", tensor(new double[,] { { 1.0, -2.0 }, { 0.5, 3.0 }, { -1.0, 0.0 } })),
        ("unused", zeros(new long[] { 3, 4 }, dtype: ScalarType.Float64)));

    private static ISamplerRunner Sampler(string name, NoiseStream noiseStream = StepNoise.Default) =>
        SamplerCases.Build(name, Target.LogPosterior, momenta: InitialMomenta.Random, noiseStream: noiseStream);

    private static void Run(ISamplerRunner sampler, ref SgmcmcState state, int steps, bool inplace)
    {
        for (var i = 0; i < steps; i++) state = sampler.Update(state, inplace);
    }

    private static void AssertBitIdentical(ISamplerRunner sampler, SgmcmcState a, SgmcmcState b, string what)
    {
        Assert.That(a.Step, Is.EqualTo(b.Step), what);
        var left = sampler.Tensors(a).ToArray();
        var right = sampler.Tensors(b).ToArray();
        Assert.That(left, Has.Length.EqualTo(right.Length));
        for (var i = 0; i < left.Length; i++)
            Assert.That(left[i].Same(right[i]), Is.True, $"{what}: tensor {i} differs");
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.NamesAndNoiseStreams))]
    public void InPlaceAndCopyingUpdatesAreBitIdentical(string name, NoiseStream noiseStream)
    {
        var sampler = Sampler(name, noiseStream);
        var a = sampler.Init(Start(), seed: 11);
        var b = sampler.Init(Start(), seed: 11);
        var before = sampler.Tensors(b).Select(t => t.clone()).ToArray();
        var copied = sampler.Update(b, inplace: false);
        // The copying update leaves the given state as it was.
        var after = sampler.Tensors(b).ToArray();
        for (var i = 0; i < before.Length; i++)
            Assert.That(after[i].Same(before[i]), Is.True, $"copying modified tensor {i}");
        Run(sampler, ref copied, 19, inplace: false);
        var same = sampler.Update(a, inplace: true);
        Assert.That(same, Is.SameAs(a));
        Run(sampler, ref a, 19, inplace: true);
        AssertBitIdentical(sampler, a, copied, name);
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.NamesAndNoiseStreams))]
    public void SameSeedSameTrajectoryDifferentSeedDifferentStream(string name, NoiseStream noiseStream)
    {
        var sampler = Sampler(name, noiseStream);
        SgmcmcState a = sampler.Init(Start(), seed: 5), b = sampler.Init(Start(), seed: 5), c = sampler.Init(Start(), seed: 6);
        Run(sampler, ref a, 10, true);
        Run(sampler, ref b, 10, true);
        Run(sampler, ref c, 10, true);
        AssertBitIdentical(sampler, a, b, name);
        Assert.That(a.Params["theta"].Same(c.Params["theta"]), Is.False, "a different seed must give a different stream");
        // Chains stacked in one state get different noise: rows started equal must part.
        var rows = ParameterTree.From(("theta", zeros(new long[] { 3, 2 }, dtype: ScalarType.Float64)));
        var stacked = sampler.Init(rows, seed: 5);
        Run(sampler, ref stacked, 3, true);
        var t = stacked.Params["theta"];
        Assert.That(t[0].Same(t[1]) || t[1].Same(t[2]), Is.False, "stacked chains must not share noise");
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.NamesAndNoiseStreams))]
    public void SaveAndLoadResumesBitIdentically(string name, NoiseStream noiseStream)
    {
        var sampler = Sampler(name, noiseStream);
        var path = Path.Combine(Path.GetTempPath(), $"posteriors-{name}-{Guid.NewGuid():N}.state");
        try
        {
            SgmcmcState straight = sampler.Init(Start(), seed: 9);
            Run(sampler, ref straight, 7, true);
            sampler.Save(path, straight);
            Run(sampler, ref straight, 8, true);

            var resumed = sampler.Load(path);
            Assert.That(resumed.Step, Is.EqualTo(7));
            Assert.That(resumed.Seed, Is.EqualTo(9));
            Assert.That(resumed.NoiseStream, Is.EqualTo(noiseStream));
            Run(sampler, ref resumed, 8, true);
            AssertBitIdentical(sampler, straight, resumed, name);
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void TheNoiseStreamsDrawDifferentNoiseAndUnknownOnesAreRefused()
    {
        SgmcmcState a = Sampler("Sghmc", NoiseStream.PhiloxBoxMuller).Init(Start(), seed: 5);
        SgmcmcState b = Sampler("Sghmc", NoiseStream.PhiloxXoshiro).Init(Start(), seed: 5);
        Assert.That((a.NoiseStream, b.NoiseStream), Is.EqualTo((NoiseStream.PhiloxBoxMuller, NoiseStream.PhiloxXoshiro)));
        Run(Sampler("Sghmc"), ref a, 3, true);
        Run(Sampler("Sghmc"), ref b, 3, true);
        Assert.That(a.Params["theta"].Same(b.Params["theta"]), Is.False, "the two generators draw different noise");

        var sampler = Sghmc.Build(Target.LogPosterior, 0.1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => sampler.NoiseStream = (NoiseStream)7)!;
        Assert.That(e.ParamName, Is.EqualTo("NoiseStream"));
        var path = Path.Combine(Path.GetTempPath(), $"posteriors-noise-{Guid.NewGuid():N}.state");
        try
        {
            using var state = sampler.Init(Start(), seed: 1);
            state.NoiseStream = (NoiseStream)7;
            Posteriors.Serialization.StateFile.Save(path, state);
            var error = Assert.Throws<InvalidDataException>(() => Posteriors.Serialization.StateFile.Load<SghmcState>(path))!;
            Assert.That(error.Message, Does.Contain("noise_stream").And.Contain("7"));
        }
        finally { File.Delete(path); }
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.Names))]
    public void NonFiniteGradientStopsWithStepAndParameterName(string name)
    {
        LogPosterior<object?> lp = (p, _) => p["a"].sum() + p["b"].sqrt().sum();   // √b at b = 0: finite value, infinite gradient
        var sampler = SamplerCases.Build(name, lp, temperature: 0.0 + (name == "Sglrw" ? 1e-3 : 0));
        var state = sampler.Init(ParameterTree.From(("a", ones(2, dtype: ScalarType.Float64)), ("b", tensor(new[] { 4.0, 0.0 }))), seed: 1);
        var e = Assert.Throws<NonFiniteException>(() => sampler.Update(state, true))!;
        Assert.That(e.Step, Is.EqualTo(0));
        Assert.That(e.ParameterName, Is.EqualTo("b"));
        Assert.That(e.Message, Does.Contain("'b'").And.Contain("step 0"));
    }

    [Test]
    public void NonFiniteLogPosteriorReportsTheStep()
    {
        var calls = 0;
        LogPosterior<object?> lp = (p, _) => calls++ < 3 ? -p["a"].square().sum() : p["a"].sum() / 0.0;
        var sampler = SamplerCases.Build("Sgld", lp);
        var state = sampler.Init(ParameterTree.From(("a", ones(2))), seed: 1);
        for (var i = 0; i < 3; i++) state = sampler.Update(state, true);
        var e = Assert.Throws<NonFiniteException>(() => sampler.Update(state, true))!;
        Assert.That(e.Step, Is.EqualTo(3));
    }

    [Test]
    public void BadHyperparametersAreRejectedByName()
    {
        var lp = Target.LogPosterior;
        void Throws(TestDelegate build, string param)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(build)!;
            Assert.That(e.ParamName, Is.EqualTo(param));
        }
        Throws(() => Sgld.Build(lp, -1e-2), "lr");
        Throws(() => Sgld.Build(lp, 0.0), "lr");
        Throws(() => Sgld.Build(lp, double.NaN), "lr");
        Throws(() => Sgld.Build(lp, 1e-2, beta: -1), "beta");
        Throws(() => Sghmc.Build(lp, 1e-2, alpha: -1), "alpha");
        Throws(() => Sghmc.Build(lp, 1e-2, sigma: 0), "sigma");
        Throws(() => Sghmc.Build(lp, 1e-2, temperature: -0.5), "temperature");
        Throws(() => Sghmc.Build(lp, 1e-2, temperature: double.PositiveInfinity), "temperature");
        Throws(() => Sgnht.Build(lp, 1e-2, xi: double.NaN), "xi");
        Throws(() => Baoa.Build(lp, 1e-2, alpha: double.NaN), "alpha");
        Throws(() => Sglrw.Build(lp, 1e-2, temperature: 0.0), "temperature");
        Throws(() => InitialMomenta.Constant(double.NaN), "momenta");
    }

    [Test]
    public void SchedulesAreReadAtTheStepAndCheckedThere()
    {
        var lrs = new List<long>();
        var lr = Schedule.Of(t => { lrs.Add(t); return t < 2 ? 1e-2 : -1.0; });
        var t = Sghmc.Build(Target.LogPosterior, lr, temperature: Schedule.Of(s => 1.0 / (1 + s)));
        var state = t.Init(ParameterTree.From(("theta", zeros(1, 2, dtype: ScalarType.Float64))));
        state = t.Update(state, null, true);
        state = t.Update(state, null, true);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Update(state, null, true))!;
        Assert.That(e.ParamName, Is.EqualTo("lr"));
        Assert.That(e.Message, Does.Contain("step 2").And.Contain("-1"));
        Assert.That(lrs, Is.EqualTo(new long[] { 0, 1, 2 }));
    }

    [Test]
    public void SglrwRejectsAZeroTemperatureReachedByASchedule()
    {
        var t = Sglrw.Build(Target.LogPosterior, 1e-2, temperature: Schedule.Of(s => s == 0 ? 1.0 : 0.0));
        var state = t.Init(ParameterTree.From(("theta", zeros(1, 2, dtype: ScalarType.Float64))));
        state = t.Update(state, null, true);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Update(state, null, true))!;
        Assert.That(e.ParamName, Is.EqualTo("temperature"));
        Assert.That(e.Message, Does.Contain("positive"));
    }

    [Test]
    public void TooLargeBetaForTheNoiseIsAnErrorNotAClamp()
    {
        var t = Sgld.Build(Target.LogPosterior, 1.0, beta: 10.0, temperature: 1.0);
        var state = t.Init(ParameterTree.From(("theta", zeros(1, 2, dtype: ScalarType.Float64))));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Update(state, null, true))!;
        Assert.That(e.ParamName, Is.EqualTo("beta"));
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.Names))]
    public void ZeroTemperatureIsDeterministicOptimisation(string name)
    {
        if (name == "Sglrw") Assert.Pass("SGLRW is undefined at T = 0; see SglrwRejectsAZeroTemperatureReachedByASchedule.");
        var sampler = SamplerCases.Build(name, Target.LogPosterior, temperature: 0.0);
        SgmcmcState a = sampler.Init(Start(), seed: 1), b = sampler.Init(Start(), seed: 2);
        Run(sampler, ref a, 3000, true);
        Run(sampler, ref b, 3000, true);
        // No noise: the seed does not matter, and every chain converges to the mode (the mean).
        TensorAssert.Same(a.Params["theta"], b.Params["theta"]);
        Assert.That((a.Params["theta"] - Target.Mean).abs().max().item<double>(), Is.LessThan(1e-3));
    }
}
