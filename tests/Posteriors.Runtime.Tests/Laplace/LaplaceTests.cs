using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Serialization;
using Posteriors.Tests.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;
using Batch = (TorchSharp.torch.Tensor X, TorchSharp.torch.Tensor Y);

namespace Posteriors.Tests.Laplace;

public class LaplaceTests
{
    private const double Init = 0.5;
    private static readonly OutputLikelihood Bernoulli = OutputLikelihood.Bernoulli;

    private static (Batch Data, ParameterTree Params, PerDatumLogDensity<Batch> PerDatum, IForwardModel<Batch> Model) Logistic()
    {
        var data = TestModels.LinearData(1, OutputLikelihoodKind.Bernoulli);
        return (data, TestModels.LinearParams(1), TestModels.LinearPerDatum(Bernoulli), TestModels.LinearModel(Bernoulli));
    }

    /// <summary>The same per-datum log posterior evaluated through a bound nn.Linear (the per-sample fast path).</summary>
    private static (nn.Module Module, PerDatumLogDensity<Batch> PerDatum) ThroughModule()
    {
        var module = nn.Linear(10, 1, dtype: float64);
        PerDatumLogDensity<Batch> perDatum = (p, b) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            var ll = Bernoulli.LogProb(module.call(b.X), b.Y);
            return new LogDensityResult(ll + DiagNormal.LogProb(wrt, 0, 1) / TestModels.N, wrt: wrt);
        };
        return (module, perDatum);
    }

    private static Tensor BruteForceFisher(PerDatumLogDensity<Batch> perDatum, ParameterTree p, Batch data)
    {
        var g = stack(Enumerable.Range(0, TestModels.N).Select(i =>
            TestModels.SingleGradient(perDatum, p, (data.X.narrow(0, i, 1), data.Y.narrow(0, i, 1)))).ToArray());
        return g.t().mm(g);
    }

    private static Tensor AnalyticNegativeHessian(ParameterTree p, Batch data)
    {
        var xt = cat(new[] { data.X, ones(TestModels.N, 1, dtype: float64) }, 1);
        var prob = nn.functional.linear(data.X, p["weight"], p["bias"]).squeeze(1).sigmoid();
        return xt.t().mm(xt * (prob * (1 - prob)).unsqueeze(1)) + eye(11, dtype: float64); // + N · (1/N) · prior precision I
    }

    private static TState Feed<TState>(ITransform<TState, Batch> transform, ParameterTree p, Batch data, long batchSize) where TState : IAlgorithmState
    {
        var state = transform.Init(p);
        foreach (var batch in TestModels.Batches(data, batchSize)) state = transform.Update(state, batch, inplace: true);
        return state;
    }

    [TestCase(10)]
    [TestCase(100)]
    public void EveryVariantEqualsTheBruteForceSumOfPerExampleCurvature(long batchSize)
    {
        var (data, p, perDatum, model) = Logistic();
        var (module, viaModule) = ThroughModule();
        var identity = eye(11, dtype: float64) * Init;
        var fisher = BruteForceFisher(perDatum, p, data) + identity;
        var ggn = TestModels.BruteForceGgn(model, p, data) + identity;
        var hessian = AnalyticNegativeHessian(p, data) + identity;

        void Close(Tensor actual, Tensor expected, string what) =>
            Assert.That(TestModels.MaxDiff(actual, expected), Is.LessThan(1e-5), $"{what}, batch size {batchSize}");

        Close(Feed(DiagFisher.Build(perDatum, Init), p, data, batchSize).Precision.Flatten(), fisher.diagonal(), "diagonal Fisher");
        Close(Feed(DiagFisher.Build(viaModule, Init, module: module), p, data, batchSize).Precision.Flatten(), fisher.diagonal(), "diagonal Fisher, nn.Linear path");
        Close(Feed(DenseFisher.Build(perDatum, Init), p, data, batchSize).Precision, fisher, "dense Fisher");
        Close(Feed(DenseFisher.Build(viaModule, Init, module: module), p, data, batchSize).Precision, fisher, "dense Fisher, nn.Linear path");
        Close(Feed(DiagGgn.Build(model, Init), p, data, batchSize).Precision.Flatten(), ggn.diagonal(), "diagonal GGN");
        Close(Feed(DenseGgn.Build(model, Init), p, data, batchSize).Precision, ggn, "dense GGN");
        Close(Feed(DenseHessian.Build(perDatum, Init), p, data, batchSize).Precision, hessian, "dense Hessian");
    }

    [Test]
    public void HessianEpsilonAndRescaleActPerBatch()
    {
        var (data, p, perDatum, _) = Logistic();
        var state = Feed(DenseHessian.Build(perDatum, Init, epsilon: 0.1, rescale: 2), p, data, 25);
        var expected = AnalyticNegativeHessian(p, data) * 2 + eye(11, dtype: float64) * (Init + 4 * 0.1);
        Assert.That(TestModels.MaxDiff(state.Precision, expected), Is.LessThan(1e-8));
    }

    [Test]
    public void DiagonalSampleReproducesMeanAndVarianceForEveryShapeAndTemperature()
    {
        // Tolerance 0.1 on 10,000 draws: the mean's standard error is ≤ sd/100 = 0.02 (sd ≤ 2), the variance's
        // ≤ var·sqrt(2/10⁴) ≈ 0.06 for var ≤ 4: the bound is ≥ 1.6 standard errors on the worst element and far more on most.
        var mode = ParameterTree.From(("w", tensor(new double[,] { { 1, -2, 3 }, { 0.5, 0, -1 } })), ("b", tensor(new double[] { 4.0 })));
        var precision = ParameterTree.From(("w", tensor(new double[,] { { 1, 2, 4 }, { 0.5, 1.5, 3 } })), ("b", tensor(new double[] { 2.0 })));
        var state = DiagFisher.Build<Batch>((q, b) => q["b"].expand(1), precision).Init(mode);
        foreach (var temperature in new[] { 1.0, 0.25 })
        {
            var draws = DiagFisher.Sample(state, 10_000, seed: 3, temperature: temperature);
            Assert.That(draws["w"].shape, Is.EqualTo(new long[] { 10_000, 2, 3 }));
            foreach (var name in new[] { "w", "b" })
            {
                Assert.That(TestModels.MaxDiff(draws[name].mean(new long[] { 0 }), mode[name]), Is.LessThan(0.1), $"mean of {name}, T = {temperature}");
                Assert.That(TestModels.MaxDiff(draws[name].var(0), temperature / precision[name]), Is.LessThan(0.1), $"variance of {name}, T = {temperature}");
            }
        }
        Assert.That(state.Warnings, Is.Empty);
    }

    [Test]
    public void DenseSampleReproducesMeanAndCovarianceOfA2DWeight()
    {
        var (data, p, perDatum, _) = Logistic();
        var state = Feed(DenseFisher.Build(perDatum, 1.0), p, data, 50);
        var draws = DenseFisher.Sample(state, 10_000, seed: 5);
        Assert.That(draws["weight"].shape, Is.EqualTo(new long[] { 10_000, 1, 10 }));
        var flat = cat(new[] { draws["weight"].reshape(10_000, -1), draws["bias"].reshape(10_000, -1) }, 1);
        var covariance = linalg.inv(state.Precision);
        // Every variance is ≤ 1 (precision ≥ I), so standard errors are ≤ 0.014: 0.1 is ≥ 7 of them.
        Assert.That(TestModels.MaxDiff(flat.mean(new long[] { 0 }), p.Flatten()), Is.LessThan(0.1));
        Assert.That(TestModels.MaxDiff(cov(flat.t()), covariance), Is.LessThan(0.1));
    }

    [Test]
    public void NearZeroPrecisionIsFlooredWithAWarningInsteadOfCrashing()
    {
        var mode = ParameterTree.From(("w", zeros(3, dtype: float64)));
        var diagState = DiagFisher.Build<Batch>((q, b) => q["w"].expand(1), ParameterTree.From(("w", tensor(new double[] { 1, 0, 1e-12 })))).Init(mode);
        var draws = diagState.Sample(100, minPrecision: 1e-4);
        TensorAssert.Finite(draws["w"]);
        Assert.That(diagState.Warnings.Single(), Does.Contain("'w'").And.Contain("2 precision value(s)"));

        var (data, p, perDatum, _) = Logistic();
        var hessian = DenseHessian.Build(perDatum, 0.0).Init(p); // zero prior precision and no data yet: singular
        var denseDraws = hessian.Sample(100);
        TensorAssert.Finite(denseDraws["weight"]);
        Assert.That(hessian.Warnings.Single(), Does.Contain("eigenvalue"));
    }

    [Test]
    public void SubsetLeavesTheRestFixedAndMatchesTheFullComputationOnTheSubset()
    {
        manual_seed(1);
        var module = nn.Sequential(("fc1", nn.Linear(10, 5)), ("act", nn.Tanh()), ("fc2", nn.Linear(5, 1)));
        module.to(float64);
        var forward = (nn.Module<Tensor, Tensor>)module;
        PerDatumLogDensity<Batch> perDatum = (q, b) =>
        {
            var wrt = ModuleBinding.Bind(module, q);
            return new LogDensityResult(Bernoulli.LogProb(forward.call(b.X), b.Y), wrt: wrt);
        };
        var (data, _, _, _) = Logistic();
        var p = ParameterTree.FromModule(module).Map(t => t.detach().clone());
        var lastLayer = Subsets.LastLayer(p);
        var full = Feed(DiagFisher.Build(perDatum, Init, module: module), p, data, 20);
        var subset = Feed(DiagFisher.Build(perDatum, Init, lastLayer, module), p, data, 20);
        Assert.That(subset.Precision.Names, Is.EqualTo(new[] { "fc2.weight", "fc2.bias" }));
        Assert.That(TestModels.MaxDiff(subset.Precision.Flatten(), full.Precision.Select(lastLayer).Flatten()), Is.LessThan(1e-10));
        var draws = subset.Sample(50);
        Assert.That(TestModels.MaxDiff(draws["fc1.weight"], p["fc1.weight"].expand(50, 5, 10)), Is.EqualTo(0), "fixed part");
        Assert.That(draws["fc2.weight"].std().item<double>(), Is.GreaterThan(0), "approximated part");

        var dense = Feed(DenseGgn.Build(new ForwardModel<Batch>((q, b) => new ModelOutput(forward.call(b.X), ModuleBinding.Bind(module, q)), b => b.Y, Bernoulli), Init, lastLayer, module), p, data, 50);
        Assert.That(dense.Precision.shape, Is.EqualTo(new long[] { 6, 6 }));
    }

    [Test]
    public void InPlaceAndCopyingUpdatesAreBitIdentical()
    {
        var (data, p, perDatum, model) = Logistic();
        var batches = TestModels.Batches(data, 30).ToList();
        var diag = DiagGgn.Build(model, Init);
        var dense = DenseFisher.Build(perDatum, Init);
        DiagLaplaceState a = diag.Init(p), b = diag.Init(p);
        DenseLaplaceState c = dense.Init(p), d = dense.Init(p);
        foreach (var batch in batches)
        {
            var before = b.Precision.Clone();
            a = diag.Update(a, batch, inplace: true);
            var next = diag.Update(b, batch);
            Assert.That(TestModels.MaxDiff(b.Precision.Flatten(), before.Flatten()), Is.EqualTo(0), "copying left the old state untouched");
            b = next;
            c = dense.Update(c, batch, inplace: true);
            d = dense.Update(d, batch);
        }
        TensorAssert.Same(a.Precision.Flatten(), b.Precision.Flatten());
        TensorAssert.Same(c.Precision, d.Precision);
        Assert.That(a.Step, Is.EqualTo(b.Step).And.EqualTo(4));
    }

    [Test]
    public void SaveLoadRoundTripResumesIdentically()
    {
        var (data, p, perDatum, _) = Logistic();
        var batches = TestModels.Batches(data, 50).ToList();
        var transform = DenseFisher.Build(perDatum, Init);
        var state = transform.Update(transform.Init(p), batches[0]);
        var path = Path.Combine(Path.GetTempPath(), $"laplace-{Guid.NewGuid():N}.pst");
        try
        {
            StateFile.Save(path, state);
            var loaded = StateFile.Load<DenseLaplaceState>(path);
            Assert.That(loaded.Subset, Is.EqualTo(state.Subset));
            TensorAssert.Same(transform.Update(loaded, batches[1]).Precision, transform.Update(state, batches[1]).Precision);

            var diag = DiagFisher.Build(perDatum, Init);
            var diagState = diag.Update(diag.Init(p), batches[0]);
            StateFile.Save(path, diagState);
            var diagLoaded = StateFile.Load<DiagLaplaceState>(path);
            TensorAssert.Same(diagLoaded.Precision.Flatten(), diagState.Precision.Flatten());
            Assert.That(diagLoaded.Method, Is.EqualTo("DiagFisher"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void BadHyperparametersGiveClearExceptions()
    {
        var (_, p, perDatum, model) = Logistic();
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DenseHessian.Build(perDatum, epsilon: -1))!.ParamName, Is.EqualTo("epsilon"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DenseHessian.Build(perDatum, rescale: 0))!.ParamName, Is.EqualTo("rescale"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DiagFisher.Build(perDatum, -1.0))!.Message, Does.Contain("initPrecision"));
        Assert.Throws<KeyNotFoundException>(() => DiagGgn.Build(model, subset: new[] { "head.weight" }).Init(p));
        var state = DiagFisher.Build(perDatum).Init(p);
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => state.Sample(0))!.ParamName, Is.EqualTo("count"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => state.Sample(5, temperature: double.NaN))!.ParamName, Is.EqualTo("temperature"));
        Assert.That(Assert.Throws<ArgumentException>(() => DiagGgn.Build(model).Update(state, default))!.Message, Does.Contain("DiagFisher"));
        var badTree = ParameterTree.From(("weight", full(new long[] { 1, 10 }, -1.0, dtype: float64)), ("bias", ones(1, dtype: float64)));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DiagFisher.Build(perDatum, badTree).Init(p))!.Message, Does.Contain("'weight'"));
    }
}
