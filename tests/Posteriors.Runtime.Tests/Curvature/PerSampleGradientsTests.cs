using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Curvature;

public class PerSampleGradientsTests
{
    private static (nn.Module Module, PerDatumLogDensity<(Tensor X, Tensor Y)> PerDatum, ParameterTree Params) Mlp()
    {
        manual_seed(5);
        var module = nn.Sequential(("fc1", nn.Linear(4, 8)), ("act", nn.Tanh()), ("fc2", nn.Linear(8, 3)));
        module.to(float64);
        var forward = (nn.Module<Tensor, Tensor>)module;
        PerDatumLogDensity<(Tensor X, Tensor Y)> perDatum = (p, b) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            var logits = forward.call(b.X);
            var ll = OutputLikelihood.Categorical.LogProb(logits, b.Y);
            return new LogDensityResult(ll + DiagNormal.LogProb(wrt, 0, 1) / 50, wrt: wrt);
        };
        var values = ParameterTree.FromModule(module).Map(t => t.detach().clone() + 0.05);
        return (module, perDatum, values);
    }

    private static (Tensor X, Tensor Y) MlpData(int b = 12) => (randn(new long[] { b, 4 }, dtype: float64, generator: new Generator(3)), randint(0, 3, new long[] { b }, generator: new Generator(4)));

    private static Tensor LoopOfSingleGradients<TBatch>(PerDatumLogDensity<TBatch> f, ParameterTree p, Func<long, TBatch> single, long b, IEnumerable<string>? subset = null) =>
        stack(Enumerable.Range(0, (int)b).Select(i => TestModels.SingleGradient(f, p, single(i), subset)).ToArray());

    [Test]
    public void LinearLayerFastPathEqualsALoopOfSingleExampleGradients()
    {
        var (module, perDatum, p) = Mlp();
        var data = MlpData();
        var expected = LoopOfSingleGradients(perDatum, p, i => (data.X.narrow(0, i, 1), data.Y.narrow(0, i, 1)), 12);
        var fast = PerSampleGradients.Matrix(perDatum, p, data, module: module);
        var general = PerSampleGradients.Matrix(perDatum, p, data);
        Assert.That(TestModels.MaxDiff(fast, expected), Is.LessThan(1e-10), "fast path (hooks on nn.Linear)");
        Assert.That(PerSampleGradients.Factor(perDatum, p, data, null, module).FastPathLeaves, Is.EquivalentTo(p.Names), "every leaf took the fast path");
        Assert.That(PerSampleGradients.Factor(perDatum, p, data, null, null).FastPathLeaves, Is.Empty);
        Assert.That(TestModels.MaxDiff(general, expected), Is.LessThan(1e-10), "general path (one backward per datum)");
    }

    [Test]
    public void SumOfSquaresWithoutPerSampleTensorsEqualsTheSquaredLoop()
    {
        var (module, perDatum, p) = Mlp();
        var data = MlpData();
        var expected = LoopOfSingleGradients(perDatum, p, i => (data.X.narrow(0, i, 1), data.Y.narrow(0, i, 1)), 12).square().sum(dim: 0);
        var fast = PerSampleGradients.SumOfSquares(perDatum, p, data, module: module).Flatten();
        Assert.That(TestModels.MaxDiff(fast, expected), Is.LessThan(1e-10));
    }

    [Test]
    public void FastPathHandlesMiddleDimensionsAndSubsets()
    {
        // Each datum is a set of 5 vectors through the same Linear, averaged: the outer products are summed over the set.
        manual_seed(9);
        var module = nn.Sequential(("enc", nn.Linear(3, 4)), ("act", nn.ReLU()), ("head", nn.Linear(4, 1)));
        module.to(float64);
        var forward = (nn.Module<Tensor, Tensor>)module;
        PerDatumLogDensity<Tensor> perDatum = (p, x) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new LogDensityResult(forward.call(x).mean(new long[] { 1 }).squeeze(1).sin(), wrt: wrt);
        };
        var p = ParameterTree.FromModule(module).Map(t => t.detach().clone());
        var x = randn(new long[] { 6, 5, 3 }, dtype: float64, generator: new Generator(2));
        var subset = new[] { "enc.weight", "head.weight", "head.bias" };
        var expected = LoopOfSingleGradients(perDatum, p, i => x.narrow(0, i, 1), 6, subset);
        var fast = PerSampleGradients.Matrix(perDatum, p, x, subset, module);
        Assert.That(TestModels.MaxDiff(fast, expected), Is.LessThan(1e-10));
        var squares = PerSampleGradients.SumOfSquares(perDatum, p, x, subset, module).Flatten();
        Assert.That(TestModels.MaxDiff(squares, expected.square().sum(dim: 0)), Is.LessThan(1e-10));
    }

    [Test]
    public void ShapesFollowTheParametersWithALeadingBatchDimension()
    {
        var (module, perDatum, p) = Mlp();
        var g = PerSampleGradients.Compute(perDatum, p, MlpData(7), module: module);
        Assert.That(g["fc1.weight"].shape, Is.EqualTo(new long[] { 7, 8, 4 }));
        Assert.That(g["fc2.bias"].shape, Is.EqualTo(new long[] { 7, 3 }));
    }

    [Test]
    public void AScalarFunctionIsRejectedWithAClearMessage()
    {
        PerDatumLogDensity<Tensor> scalar = (p, x) => (p["w"] * x).sum();
        var e = Assert.Throws<InvalidOperationException>(() => PerSampleGradients.Compute(scalar, ParameterTree.From(("w", ones(2))), ones(3, 2)));
        Assert.That(e!.Message, Does.Contain("one value per datum"));
        Assert.Throws<KeyNotFoundException>(() => PerSampleGradients.Compute(scalar, ParameterTree.From(("w", ones(2))), ones(3, 2), new[] { "nope" }));
    }
}
