using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Serialization;
using Posteriors.Tests.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;
using Batch = (TorchSharp.torch.Tensor X, TorchSharp.torch.Tensor Y);

namespace Posteriors.Tests.Laplace;

public class KfacTests
{
    /// <summary>An IForwardModel that evaluates <paramref name="module"/> at the given parameters.</summary>
    private static ForwardModel<Batch> Through(nn.Module<Tensor, Tensor> module, OutputLikelihood likelihood) => new(
        (p, b) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new ModelOutput(module.call(b.X), wrt);
        },
        b => b.Y, likelihood);

    private static TState Feed<TState>(ITransform<TState, Batch> transform, ParameterTree p, Batch data, long batchSize) where TState : IAlgorithmState
    {
        var state = transform.Init(p);
        foreach (var batch in TestModels.Batches(data, batchSize)) state = transform.Update(state, batch, inplace: true);
        return state;
    }

    private static double RelativeError(Tensor a, Tensor b) => ((a - b).norm() / b.norm()).item<double>();

    /// <summary>Conv(1→2, 3×3, padding 1) → tanh → flatten → Linear(2·4·4 → 3): a small net with both layer kinds.</summary>
    private sealed class SmallNet : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Conv2d conv;
        private readonly TorchSharp.Modules.Linear fc;

        public SmallNet(long outputs) : base(nameof(SmallNet))
        {
            conv = nn.Conv2d(1, 2, 3, padding: 1, dtype: float64);
            fc = nn.Linear(32, outputs, dtype: float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc.call(conv.call(x).tanh().flatten(1));
    }

    [TestCase(10)]
    [TestCase(100)]
    public void OneLinearLayerWithOneOutputEqualsTheDenseGgnExactly(long batchSize)
    {
        manual_seed(3);
        var module = nn.Linear(10, 1, dtype: float64);
        var data = TestModels.LinearData(1, OutputLikelihoodKind.Normal);
        var model = Through(module, OutputLikelihood.Normal(0.5));
        var p = ParameterTree.FromModule(module).Clone();
        var kfac = Feed(Kfac.Build(model, module, priorPrecision: 0.7), p, data, batchSize);
        var dense = Feed(DenseGgn.Build(model, initPrecision: 0.7, module: module), p, data, batchSize);
        Assert.That(kfac.DataCount, Is.EqualTo(TestModels.N));
        TensorAssert.Close(kfac.DensePrecision(), dense.Precision, 1e-10, 1e-10);
    }

    [Test]
    public void AConvolutionSeeingOnePatchWithOneOutputEqualsTheDenseGgnExactly()
    {
        // A 3×3 kernel on 3×3 images has one position: the convolution is a linear layer on the flattened image.
        manual_seed(4);
        var conv = nn.Conv2d(1, 1, 3, dtype: float64);
        var net = nn.Sequential(("conv", conv), ("flat", nn.Flatten()));
        var g = new Generator(5);
        var x = randn(new long[] { 40, 1, 3, 3 }, dtype: float64, generator: g);
        var y = randn(new long[] { 40, 1 }, dtype: float64, generator: g);
        var model = Through(net, OutputLikelihood.Normal(2));
        var p = ParameterTree.FromModule(net).Clone();
        var kfac = Feed(Kfac.Build(model, net, priorPrecision: 1), p, (x, y), 16);
        var dense = Feed(DenseGgn.Build(model, initPrecision: 1.0, module: net), p, (x, y), 16);
        Assert.That(kfac.Layers.Single().IsConvolution);
        TensorAssert.Close(kfac.DensePrecision(), dense.Precision, 1e-10, 1e-10);
    }

    [Test]
    public void OnASmallNetTheErrorAgainstTheDenseGgnIsReportedAndTheLayerBlocksKeepTheirScale()
    {
        manual_seed(6);
        var net = new SmallNet(3);
        var g = new Generator(7);
        var x = randn(new long[] { 64, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 64 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var p = ParameterTree.FromModule(net).Clone();
        var kfac = Feed(Kfac.Build(model, net, priorPrecision: 1e-3), p, (x, y), 32);
        var dense = Feed(DenseGgn.Build(model, initPrecision: 1e-3, module: net), p, (x, y), 32);
        var k = kfac.DensePrecision();
        var error = RelativeError(k, dense.Precision);
        // KFAC keeps the block diagonal only; within a block it replaces Σᵢ Gᵢ ⊗ Aᵢ by (Σᵢ Gᵢ) ⊗ mean(Aᵢ).
        var layout = p.Layout.ToDictionary(s => s.Name);
        var fc = layout["fc.weight"].Offset;
        var n = layout["fc.bias"].Offset + layout["fc.bias"].Length - fc;
        var fcError = RelativeError(k.narrow(0, fc, n).narrow(1, fc, n), dense.Precision.narrow(0, fc, n).narrow(1, fc, n));
        TestContext.Out.WriteLine($"KFAC vs dense GGN, relative Frobenius error: whole net {error:F3}, last layer block {fcError:F3}");
        Assert.That(error, Is.GreaterThan(1e-6).And.LessThan(0.6));
        Assert.That(fcError, Is.LessThan(error + 1e-12));
        // Traces agree exactly: tr(G ⊗ A) = tr G tr A and Σᵢ tr(Gᵢ) tr(Aᵢ) differ, but the total curvature of a layer stays
        // within a factor 2 of the dense one.
        var ratio = (k.narrow(0, fc, n).narrow(1, fc, n).trace() / dense.Precision.narrow(0, fc, n).narrow(1, fc, n).trace()).item<double>();
        Assert.That(ratio, Is.InRange(0.5, 2.0));
    }

    [Test]
    public void SampledCurvatureMatchesTheExactOneInExpectation()
    {
        manual_seed(8);
        var module = nn.Linear(4, 3, dtype: float64);
        var g = new Generator(9);
        var x = randn(new long[] { 4000, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 4000 }, generator: g);
        var model = Through(module, OutputLikelihood.Categorical);
        var p = ParameterTree.FromModule(module).Clone();
        var exact = Feed(Kfac.Build(model, module), p, (x, y), 500);
        var sampled = Feed(Kfac.Build(model, module, sampled: true), p, (x, y), 500);
        Assert.That(sampled.Curvature, Is.EqualTo("sampled"));
        TensorAssert.Same(sampled.FactorASum["."], exact.FactorASum["."], "A does not depend on the labels");
        // G sums 4000 rank-one terms whose mean is the exact one: relative error ≈ 1/√4000 ≈ 0.016 per entry.
        Assert.That(RelativeError(sampled.FactorG["."], exact.FactorG["."]), Is.LessThan(0.08));
    }

    [Test]
    public void DrawsFollowTheInverseOfTheKfacPrecision()
    {
        manual_seed(10);
        var net = nn.Sequential(("hidden", nn.Linear(3, 4, dtype: float64)), ("act", nn.Tanh()), ("out", nn.Linear(4, 2, dtype: float64)));
        var g = new Generator(11);
        var x = randn(new long[] { 50, 3 }, dtype: float64, generator: g);
        var y = randint(0, 2, new long[] { 50 }, generator: g);
        var p = ParameterTree.FromModule(net).Clone();
        var state = Feed(Kfac.Build(Through(net, OutputLikelihood.Categorical), net, priorPrecision: 2), p, (x, y), 25);
        var draws = state.Sample(20000, seed: 3, temperature: 0.5);
        Assert.That(draws["hidden.weight"].shape, Is.EqualTo(new long[] { 20000, 4, 3 }));
        var flat = cat(draws.Select(p.Names).Leaves.Select(t => t.reshape(20000, -1)).ToArray(), 1);
        var mean = flat.mean(new long[] { 0 });
        var centred = flat - mean;
        var covariance = centred.t().mm(centred) / 19999;
        var expected = 0.5 * linalg.inv(state.DensePrecision());
        // 20,000 draws: the sample covariance's relative error is about √(2/20000)·√P ≈ 0.05 for P = 26.
        Assert.That(RelativeError(covariance, expected), Is.LessThan(0.1));
        var sd = expected.diagonal().sqrt();
        Assert.That(((mean - p.Flatten()).abs() / sd).max().item<double>(), Is.LessThan(4.5 / Math.Sqrt(20000) * 10));
    }

    [Test]
    public void TheLinearisedPredictiveEqualsJacobianTimesTheInverseTimesJacobian()
    {
        manual_seed(12);
        var net = new SmallNet(3);
        var g = new Generator(13);
        var x = randn(new long[] { 30, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 30 }, generator: g);
        var p = ParameterTree.FromModule(net).Clone();
        var state = Feed(Kfac.Build(Through(net, OutputLikelihood.Categorical), net, priorPrecision: 0.5), p, (x, y), 30);
        var inputs = x.narrow(0, 0, 5);
        Func<ParameterTree, ModelOutput> forward = q => { var wrt = ModuleBinding.Bind(net, q); return new ModelOutput(net.call(inputs), wrt); };
        var (mean, cov) = Kfac.LinearisedPredictive(state, forward, net, temperature: 2);
        // Brute force: the Jacobian of each output by per-sample gradients, then J (2 Λ⁻¹) Jᵀ with the dense KFAC precision.
        var names = state.Subset;
        var columns = new List<Tensor>();
        for (long c = 0; c < 3; c++)
        {
            var column = c;
            PerDatumLogDensity<int> fc = (q, _) =>
            {
                var o = forward(q);
                return new LogDensityResult(o.Outputs.select(1, column), wrt: o.Wrt);
            };
            columns.Add(PerSampleGradients.Matrix(fc, p, 0, names, net));
        }
        var j = stack(columns.ToArray(), 1);                             // [B, K, P]
        var sigma = 2 * linalg.inv(state.DensePrecision());
        var expected = Checked.MatMul(Checked.MatMul(j, sigma.unsqueeze(0)), j.transpose(1, 2));
        using (no_grad()) TensorAssert.Close(mean, net.call(inputs), 1e-12, 1e-12);
        TensorAssert.Close(cov, expected, 1e-8, 1e-10);
    }

    [Test]
    public void StatesSaveAndLoadAndBadHyperparametersAreNamed()
    {
        manual_seed(14);
        var module = nn.Linear(3, 2, dtype: float64);
        var g = new Generator(15);
        var x = randn(new long[] { 20, 3 }, dtype: float64, generator: g);
        var y = randint(0, 2, new long[] { 20 }, generator: g);
        var model = Through(module, OutputLikelihood.Categorical);
        var state = Feed(Kfac.Build(model, module), ParameterTree.FromModule(module).Clone(), (x, y), 10);
        var path = Path.Combine(Path.GetTempPath(), $"kfac-{Guid.NewGuid():N}.state");
        StateFile.Save(path, state);
        var back = StateFile.Load<KfacLaplaceState>(path);
        File.Delete(path);
        TensorAssert.Same(back.DensePrecision(), state.DensePrecision());
        Assert.That(back.DataCount, Is.EqualTo(20));
        TensorAssert.Same(back.LogLikelihoodSum, state.LogLikelihoodSum);

        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Kfac.Build(model, module, priorPrecision: 0))!.ParamName, Is.EqualTo("priorPrecision"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kfac.Build(model, module, priorPrecision: -1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => state.SetPriorPrecision(1, new[] { -2.0 }))!;
        Assert.That(e.Message, Does.Contain("layer '.'").And.Contain("-2"));
        Assert.That(Assert.Throws<ArgumentException>(() => Kfac.Build(model, module, layers: new[] { "fc9" }))!.Message, Does.Contain("'fc9'"));
    }
}
