using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Core;

public class ContractTests
{
    [Test]
    public void ValueAndGradReturnsTheAscentDirectionOnce()
    {
        var p = ParameterTree.From(("x", tensor(new[] { 1.0, -2.0 })), ("unused", tensor(new[] { 5.0 })));
        var calls = 0;
        LogPosterior<double> f = (q, scale) => { calls++; return (-(q["x"] * q["x"]).sum() * scale, q["x"] * 10); };
        var r = Autodiff.ValueAndGrad(f, p, 0.5);
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(r.Value.item<double>(), Is.EqualTo(-2.5));
        Assert.That(r.Gradient["x"].data<double>().ToArray(), Is.EqualTo(new[] { -1.0, 2.0 }));
        Assert.That(r.Gradient["unused"].data<double>().ToArray(), Is.EqualTo(new[] { 0.0 }), "unused parameters get zeros");
        Assert.That(r.Aux!.data<double>().ToArray(), Is.EqualTo(new[] { 10.0, -20.0 }));
        Assert.That(r.Value.requires_grad || r.Gradient["x"].requires_grad || r.Aux.requires_grad, Is.False);
        Assert.That(p["x"].requires_grad, Is.False, "the caller's tensors are not touched");
    }

    [Test]
    public void AOneElementValueOfAnyShapeGivesTheSameScalarAndGradient()
    {
        var p = ParameterTree.From(("x", tensor(new[] { 1.5f, -2.0f })));
        LogPosterior<int> scalar = (q, _) => (q["x"] * q["x"]).sum() * -0.5f;
        LogPosterior<int> shaped = (q, _) => ((q["x"] * q["x"]).sum() * -0.5f).reshape(1, 1);
        var a = Autodiff.ValueAndGrad(scalar, p, 0);
        var b = Autodiff.ValueAndGrad(shaped, p, 0);
        Assert.That(a.Value.dim() + b.Value.dim(), Is.EqualTo(0), "the value is 0-dimensional either way");
        Assert.That(b.Value.item<float>(), Is.EqualTo(a.Value.item<float>()).And.EqualTo(-3.125f));
        Assert.That(b.Gradient["x"].data<float>().ToArray(), Is.EqualTo(a.Gradient["x"].data<float>().ToArray()).And.EqualTo(new[] { -1.5f, 2.0f }));
    }

    [Test]
    public void NonFiniteLogDensitiesAreFoundWhateverTheirTypeAndLayout()
    {
        // Float CPU scalars are read from storage; the rest go through libtorch.
        foreach (var (name, value) in new[]
                 {
                     ("float32", tensor(float.NaN)), ("float64", tensor(double.NegativeInfinity)), ("float16", tensor(float.PositiveInfinity).to_type(ScalarType.Float16)),
                     ("shape [1]", tensor(new[] { float.NaN })), ("a view into a larger tensor", tensor(new[] { 0.0, double.NaN }).narrow(0, 1, 1)),
                 })
        {
            var e = Assert.Throws<NonFiniteException>(() => NonFiniteException.ThrowIfNotFinite(2, value), name);
            Assert.That(e!.ParameterName, Is.Null, name);
        }
        Assert.DoesNotThrow(() => NonFiniteException.ThrowIfNotFinite(2, tensor(new[] { double.NaN, -1.0 }).narrow(0, 1, 1)), "the view's own element is finite");
    }

    [Test]
    public void AnUpdateRecordsTheLogDensityAtTheOldParametersWhateverItsType()
    {
        foreach (var (name, dtype, valueType) in new[]
                 {
                     ("float32", ScalarType.Float32, ScalarType.Float32), ("float64", ScalarType.Float64, ScalarType.Float64),
                     ("a float64 value of float32 parameters", ScalarType.Float32, ScalarType.Float64),
                 })
        {
            LogPosterior<int> f = (q, _) => ((q["x"] - 1).square().sum() * -0.5).to_type(valueType);
            var sgld = Posteriors.Sgmcmc.Sgld.Build(f, 0.1, temperature: 0);
            var state = sgld.Init(ParameterTree.From(("x", tensor(new[] { 3.0, -1.0 }, dtype: dtype))));
            state = sgld.Update(state, 0, inplace: true);
            Assert.That(state.LogPosterior.dtype, Is.EqualTo(dtype), name);
            Assert.That(state.LogPosterior.to_type(ScalarType.Float64).item<double>(), Is.EqualTo(-4.0), name);
            sgld.Update(state, 0, inplace: true);
            Assert.That(state.LogPosterior.to_type(ScalarType.Float64).item<double>(), Is.EqualTo(-0.5 * (1.8 * 1.8 + 1.8 * 1.8)).Within(1e-6), name);
        }
    }

    [Test]
    public void NonScalarLogPosteriorIsRejectedWithAHint()
    {
        var p = ParameterTree.From(("x", zeros(3)));
        LogPosterior<int> perDatum = (q, _) => q["x"] * 2;
        var e = Assert.Throws<InvalidOperationException>(() => Autodiff.ValueAndGrad(perDatum, p, 0));
        Assert.That(e!.Message, Does.Contain("scalar").And.Contain("[3]"));
    }

    [Test]
    public void NonFiniteValueOrGradientIsReportedWithStepAndParameter()
    {
        var ok = ParameterTree.From(("a", zeros(2)), ("b", ones(2)));
        Assert.DoesNotThrow(() => NonFiniteException.ThrowIfNotFinite(3, tensor(1.0), ok));
        var e = Assert.Throws<NonFiniteException>(() => NonFiniteException.ThrowIfNotFinite(7, tensor(double.NaN), ok));
        Assert.That(e!.Step, Is.EqualTo(7));
        Assert.That(e.ParameterName, Is.Null);
        Assert.That(e.Message, Does.Contain("step 7"));
        var bad = ParameterTree.From(("a", zeros(2)), ("b", tensor(new[] { 1f, float.PositiveInfinity })));
        e = Assert.Throws<NonFiniteException>(() => NonFiniteException.ThrowIfNotFinite(9, tensor(1.0), bad));
        Assert.That(e!.ParameterName, Is.EqualTo("b"));
        Assert.That(e.Message, Does.Contain("'b'").And.Contain("step 9"));
        // Large finite gradients whose sum overflows float32 are not an error.
        var huge = ParameterTree.From(("h", full(4, 3e38f)));
        Assert.DoesNotThrow(() => NonFiniteException.ThrowIfNotFinite(1, tensor(1.0), huge));
    }

    [Test]
    public void CosineScheduleAnnealsFromStartToEndAndHolds()
    {
        var lr = Schedule.Cosine(1.0, 0.1, 100);
        Assert.That(lr.At(0), Is.EqualTo(1.0).Within(1e-12));
        Assert.That(lr.At(50), Is.EqualTo(0.55).Within(1e-12));
        Assert.That(lr.At(25), Is.EqualTo(0.1 + 0.9 * (1 + Math.Cos(Math.PI / 4)) / 2).Within(1e-12));
        Assert.That(lr.At(100), Is.EqualTo(0.1));
        Assert.That(lr.At(1000), Is.EqualTo(0.1));
        for (var t = 1; t <= 100; t++) Assert.That(lr.At(t), Is.LessThan(lr.At(t - 1)));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Schedule.Cosine(1.0, -0.1, 100))!;
        Assert.That(e.ParamName, Is.EqualTo("end"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Schedule.Cosine(1.0, 0.1, 0))!;
        Assert.That(e.ParamName, Is.EqualTo("steps"));
    }

    [Test]
    public void SchedulesAreConstantsOrFunctionsAndCheckedByName()
    {
        Schedule lr = 0.1;
        Assert.That(lr.IsConstant, Is.True, "a double converts to a constant schedule");
        Assert.That(lr.At(1000), Is.EqualTo(0.1));
        var decay = Schedule.Of(t => 1.0 / (1 + t));
        Assert.That(decay.At(3), Is.EqualTo(0.25));
        var negative = Schedule.Of(t => t < 5 ? 0.1 : -1);
        Assert.That(negative.At(4, "lr"), Is.EqualTo(0.1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => negative.At(5, "lr"));
        Assert.That(e!.Message, Does.Contain("'lr'").And.Contain("step 5").And.Contain("-1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Schedule.Constant(double.NaN).At(0, "temperature"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Schedule.Constant(0).At(0, "lr", positive: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => Check.Positive(0, "sigma"));
        Assert.That(Check.NonNegative(0, "alpha"), Is.EqualTo(0));
    }

    [TestCase(ScalarType.Float32), TestCase(ScalarType.Float64)]
    public void NonFiniteGradientEntriesAreFoundInTheVectorBodyAndTheTail(ScalarType dtype)
    {
        // 37 elements: two or four 512-bit vectors and a scalar tail; a huge finite value must not count.
        foreach (var (at, bad) in new[] { (3, double.PositiveInfinity), (36, double.NaN), (20, double.NegativeInfinity) })
        {
            var g = full(37, 1e30, dtype: dtype);
            g[at] = tensor(bad, dtype: dtype);
            var tree = ParameterTree.From(("fine", full(37, 1e30, dtype: dtype)), ("bad", g));
            var e = Assert.Throws<NonFiniteException>(() => NonFiniteException.ThrowIfNotFinite(4, tensor(0.0, dtype: dtype), tree));
            Assert.That(e!.ParameterName, Is.EqualTo("bad"), $"{bad} at {at}");
        }
        Assert.DoesNotThrow(() => NonFiniteException.ThrowIfNotFinite(4, tensor(0.0, dtype: dtype),
            ParameterTree.From(("fine", full(37, dtype == ScalarType.Float32 ? 3e38 : 1e308, dtype: dtype)))));
    }

    [Test]
    public void RngStreamsAreReproduciblePerSeedAndStepAndDifferOtherwise()
    {
        var rng = new Rng();
        Tensor Draw(long seed, long step, int stream = 0) => randn(new long[] { 1000 }, generator: rng.For(seed, step, CPU, stream));
        var a = Draw(1, 5);
        var b = Draw(1, 5);
        Assert.That(a.equal(b).all().item<bool>(), Is.True, "same (seed, step) → same numbers");
        foreach (var other in new[] { Draw(2, 5), Draw(1, 6), Draw(1, 5, stream: 1) })
        {
            // Independent N(0,1) vectors of length 1000: correlation has sd ≈ 0.032; 0.15 is > 4.5 sd.
            var corr = (a * other).mean().item<float>();
            Assert.That(Math.Abs(corr), Is.LessThan(0.15));
        }
        Assert.That(Rng.Mix(0, 0), Is.Not.EqualTo(Rng.Mix(0, 1)));
        Assert.That(Rng.Mix(1, 0), Is.GreaterThanOrEqualTo(0));
    }
}
