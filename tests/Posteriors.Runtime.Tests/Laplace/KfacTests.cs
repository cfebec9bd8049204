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
        var dense = Feed(DenseGgn.Build(model, initPrecision: 1.0, module: net), p, (x, y), 16);
        foreach (var convFactors in new[] { KfacConvFactors.Expand, KfacConvFactors.Reduce })
        {
            var kfac = Feed(Kfac.Build(model, net, priorPrecision: 1, convFactors: convFactors), p, (x, y), 16);
            Assert.That(kfac.Layers.Single().IsConvolution);
            Assert.That(kfac.ConvFactors, Is.EqualTo(convFactors));
            TensorAssert.Close(kfac.DensePrecision(), dense.Precision, 1e-10, 1e-10);
        }
    }

    [TestCase(1, 1, 1)]
    [TestCase(2, 1, 0)]
    [TestCase(2, 2, 2)]
    [TestCase(3, 2, 1)]
    public void ThePatchMeansFromShiftedSumsEqualTheUnfoldedPatchesAveragedOverPositions(long stride, long dilation, long padding)
    {
        manual_seed(20);
        var conv = nn.Conv2d(3, 4, 3, stride: stride, padding: padding, dilation: dilation, dtype: float64);
        var x = randn(new long[] { 5, 3, 11, 9 }, dtype: float64, generator: new Generator(21));
        var layer = Kfac.FindLayers(conv, null).Single();
        var (_, recorded) = Kfac.Record(conv, new[] { layer }, () => conv.call(x));
        var r = recorded[layer.Key];
        TensorAssert.Close(r.PatchMeans(), r.Patches().mean(new long[] { 1 }), 1e-12, 1e-12);
    }

    // Stride and dilation 1 take the shifted channel products unless they cost more than the patch product (3 × 3
    // without padding on 6 × 5); that case and stride or dilation 2 fall back to the unfolded patches.
    [TestCase(3, 3, 1, 1, 3, 14, 9, 1, 1, true)]
    [TestCase(5, 5, 2, 2, 2, 7, 11, 1, 1, true)]
    [TestCase(5, 5, 0, 0, 2, 9, 8, 1, 1, true)]
    [TestCase(3, 3, 2, 2, 2, 5, 6, 1, 1, true)]
    [TestCase(3, 5, 1, 0, 3, 8, 10, 1, 1, true)]
    [TestCase(3, 3, 0, 0, 1, 6, 5, 1, 1, false)]
    [TestCase(3, 3, 1, 1, 2, 9, 8, 2, 1, false)]
    [TestCase(3, 3, 2, 2, 2, 9, 8, 1, 2, false)]
    public void ConvolutionInputFactorsEqualTheUnfoldedPatchesSecondMomentAcrossBatchesSavesCopiesAndStacks(
        long kh, long kw, long ph, long pw, long channels, long height, long width, long stride, long dilation, bool fromShifts)
    {
        manual_seed(30);
        var conv = nn.Conv2d(channels, 2, (kh, kw), stride: (stride, stride), padding: (ph, pw), dilation: (dilation, dilation), dtype: float64);
        var net = nn.Sequential(("conv", conv), ("flat", nn.Flatten()));
        var g = new Generator(31);
        var x = randn(new long[] { 12, channels, height, width }, dtype: float64, generator: g);
        var outputs = net.call(x).shape[1];
        var y = randn(new long[] { 12, outputs }, dtype: float64, generator: g);
        var layer = Kfac.FindLayers(net, new[] { "conv" }).Single();
        var patches = nn.functional.unfold(x, (kh, kw), (dilation, dilation), (ph, pw), (stride, stride)).transpose(1, 2);    // [N, L, in]
        var positions = patches.shape[1];
        Tensor Expected(long n)
        {
            var a = cat(new[] { patches.narrow(0, 0, n), ones(n, positions, 1, dtype: float64) }, 2).reshape(n * positions, -1);
            return a.t().mm(a) / positions;
        }
        void Equal(Tensor actual, Tensor expected, string what) => Assert.That(RelativeError(actual, expected), Is.LessThan(1e-10), what);

        var (_, recorded) = Kfac.Record(net, new[] { layer }, () => net.call(x));
        var shifted = recorded[layer.Key].ShiftMoments();
        Assert.That(shifted is not null, Is.EqualTo(fromShifts), "which path the factor takes");
        if (shifted is not null)
            Equal(shifted, patches.reshape(-1, patches.shape[2]).t().mm(patches.reshape(-1, patches.shape[2])), "the shifted products");

        var kfac = Kfac.Build(Through(net, OutputLikelihood.Normal(1)), net, layers: new[] { "conv" }, sampled: true);
        var batches = TestModels.Batches((x, y), 4).ToList();
        var state = kfac.Init(ParameterTree.FromModule(net).Clone());
        state = kfac.Update(state, batches[0], inplace: true);
        Equal(state.FactorASum["conv"], Expected(4), "after one batch");
        state = kfac.Update(state, batches[1], inplace: true);
        var path = Path.Combine(Path.GetTempPath(), $"kfac-{Guid.NewGuid():N}.state");
        StateFile.Save(path, state);
        var back = StateFile.Load<KfacLaplaceState>(path);
        File.Delete(path);
        Equal(back.FactorASum["conv"], Expected(8), "saved and loaded");
        var copied = kfac.Update(back, batches[2], inplace: false);
        var other = kfac.Update(back, batches[2], inplace: false);
        var stacked = AlgorithmState.Stack(new[] { copied, other }).Fields.GetTree("factor_a")["conv"];
        var a = copied.FactorASum["conv"];
        Equal(a, Expected(12), "copied by an update");
        TensorAssert.Same(a, a.t(), "A is symmetric");
        Equal(stacked[0], Expected(12), "stacked");
        Equal(stacked[1], Expected(12), "stacked");
    }

    /// <summary>One convolution applied to the whole image and to its top rows: two calls of one layer.</summary>
    private sealed class ConvTwice : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Conv2d conv;

        public ConvTwice() : base(nameof(ConvTwice))
        {
            conv = nn.Conv2d(2, 3, 3, padding: 1, dtype: float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => cat(new[] { conv.call(x).flatten(1), conv.call(x.narrow(2, 0, 4)).flatten(1) }, 1);
    }

    [Test]
    public void AConvolutionCalledTwiceAveragesItsShiftedProductsOverBothCallsPositions()
    {
        manual_seed(32);
        var net = new ConvTwice();
        var g = new Generator(33);
        var x = randn(new long[] { 6, 2, 7, 5 }, dtype: float64, generator: g);
        var y = randn(new long[] { 6, net.call(x).shape[1] }, dtype: float64, generator: g);
        var state = Feed(Kfac.Build(Through(net, OutputLikelihood.Normal(1)), net, sampled: true), ParameterTree.FromModule(net).Clone(), (x, y), 3);
        var patches = cat(new[]
        {
            nn.functional.unfold(x, (3, 3), padding: (1, 1)).transpose(1, 2),
            nn.functional.unfold(x.narrow(2, 0, 4), (3, 3), padding: (1, 1)).transpose(1, 2),
        }, 1);                                                                                                      // [N, 35 + 20, 18]
        var a = cat(new[] { patches, ones(6, patches.shape[1], 1, dtype: float64) }, 2).reshape(-1, 19);
        Assert.That(RelativeError(state.FactorASum["conv"], a.t().mm(a) / patches.shape[1]), Is.LessThan(1e-10));
    }

    [Test]
    public void ReduceFactorsEqualTheirDefinitionOnASmallConvolution()
    {
        // A = Σᵢ āᵢ āᵢᵀ / N with āᵢ the unfolded patch averaged over positions (1 appended), G = Σᵢ Σ_c ḡᵢc ḡᵢcᵀ with ḡᵢc the
        // gradient of fᵢc / σ at the convolution's output summed over positions (the Normal likelihood's Hessian factor is I/σ).
        manual_seed(22);
        var conv = nn.Conv2d(2, 3, 3, stride: 2, padding: 1, dtype: float64);
        var head = nn.Linear(3 * 3 * 3, 2, dtype: float64);
        var net = nn.Sequential(("conv", conv), ("act", nn.Tanh()), ("flat", nn.Flatten()), ("head", head));
        var g = new Generator(23);
        var x = randn(new long[] { 24, 2, 6, 5 }, dtype: float64, generator: g);
        var y = randn(new long[] { 24, 2 }, dtype: float64, generator: g);
        const double sigma = 0.7;
        var p = ParameterTree.FromModule(net).Clone();
        var state = Feed(Kfac.Build(Through(net, OutputLikelihood.Normal(sigma)), net, layers: new[] { "conv" }, convFactors: KfacConvFactors.Reduce), p, (x, y), 10);

        var patches = nn.functional.unfold(x, (3, 3), padding: (1, 1), stride: (2, 2)).mean(new long[] { 2 });      // [N, 18]
        var aBar = cat(new[] { patches, ones(24, 1, dtype: float64) }, 1);
        TensorAssert.Close(state.FactorASum["conv"] / state.DataCount, aBar.t().mm(aBar) / 24, 1e-12, 1e-12);
        var s = conv.call(x).detach().requires_grad_();
        var f = head.call(s.tanh().flatten(1));
        var expected = zeros(3, 3, dtype: float64);
        var expectedExpand = zeros(3, 3, dtype: float64);
        for (long c = 0; c < 2; c++)
        {
            var gradient = autograd.grad(new[] { (f.select(1, c) / sigma).sum() }, new[] { s }, retain_graph: true)[0];
            var gBar = gradient.sum(new long[] { 2, 3 });                                                            // [N, out]
            expected += gBar.t().mm(gBar);
            var perPosition = gradient.permute(0, 2, 3, 1).reshape(-1, 3);                                          // [N·9, out]
            expectedExpand += perPosition.t().mm(perPosition);
        }
        TensorAssert.Close(state.FactorG["conv"], expected, 1e-12, 1e-12);

        // Expand on the same convolution (9 positions: a scale 1/9 that single precision cannot hold) from its definition;
        // its A comes from the unfolded patches (stride 2), its G from every position's gradient.
        var expand = Feed(Kfac.Build(Through(net, OutputLikelihood.Normal(sigma)), net, layers: new[] { "conv" }), p, (x, y), 10);
        var all = nn.functional.unfold(x, (3, 3), padding: (1, 1), stride: (2, 2)).transpose(1, 2);                  // [N, 9, 18]
        var a = cat(new[] { all, ones(24, 9, 1, dtype: float64) }, 2).reshape(-1, 19);
        TensorAssert.Close(expand.FactorASum["conv"] / expand.DataCount, a.t().mm(a) / (24 * 9), 1e-13, 1e-13);
        TensorAssert.Close(expand.FactorG["conv"], expectedExpand, 1e-12, 1e-12);
    }

    [Test]
    public void ReduceAndExpandDifferForAConvolutionWithManyPositions()
    {
        manual_seed(24);
        var net = new SmallNet(3);
        var g = new Generator(25);
        var x = randn(new long[] { 16, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 16 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var p = ParameterTree.FromModule(net).Clone();
        var expand = Feed(Kfac.Build(model, net), p, (x, y), 8);
        var reduce = Feed(Kfac.Build(model, net, convFactors: KfacConvFactors.Reduce), p, (x, y), 8);
        Assert.That(RelativeError(reduce.FactorASum["conv"], expand.FactorASum["conv"]), Is.GreaterThan(1e-3));
        // The Linear layer's factors do not depend on the choice.
        TensorAssert.Close(reduce.FactorASum["fc"], expand.FactorASum["fc"], 1e-12, 1e-12);
        TensorAssert.Close(reduce.FactorG["fc"], expand.FactorG["fc"], 1e-12, 1e-12);
    }

    [Test]
    public void InputFactorsAddedByUpperBlocksAreWholeAndSymmetricAcrossReadsSavesAndLaterBatches()
    {
        // 450 inputs: A's 451 columns are accumulated in blocks, only those on and above the diagonal.
        manual_seed(26);
        var module = nn.Linear(450, 2, dtype: float64);
        var g = new Generator(27);
        var x = randn(new long[] { 60, 450 }, dtype: float64, generator: g);
        var y = randint(0, 2, new long[] { 60 }, generator: g);
        var kfac = Kfac.Build(Through(module, OutputLikelihood.Categorical), module, sampled: true);
        var state = kfac.Init(ParameterTree.FromModule(module).Clone());
        Tensor Expected(long n) { var a = cat(new[] { x.narrow(0, 0, n), ones(n, 1, dtype: float64) }, 1); return a.t().mm(a); }
        var batches = TestModels.Batches((x, y), 20).ToList();
        state = kfac.Update(state, batches[0], inplace: true);
        TensorAssert.Close(state.FactorASum["."], Expected(20), 1e-12, 1e-12);
        state = kfac.Update(state, batches[1], inplace: true);
        // Saved without a read in between: the file holds the whole symmetric factor.
        var path = Path.Combine(Path.GetTempPath(), $"kfac-{Guid.NewGuid():N}.state");
        StateFile.Save(path, state);
        var back = StateFile.Load<KfacLaplaceState>(path);
        File.Delete(path);
        TensorAssert.Close(back.FactorASum["."], Expected(40), 1e-12, 1e-12);
        back = kfac.Update(back, batches[2], inplace: false);
        var a = back.FactorASum["."];
        TensorAssert.Close(a, Expected(60), 1e-12, 1e-12);
        TensorAssert.Same(a, a.t(), "A is symmetric");
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

    [TestCase(false)]
    [TestCase(true)]
    public void TheLinearisedPredictiveEqualsJacobianTimesTheInverseTimesJacobian(bool corrected)
    {
        manual_seed(12);
        var net = new SmallNet(3);
        var g = new Generator(13);
        var x = randn(new long[] { 30, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 30 }, generator: g);
        var p = ParameterTree.FromModule(net).Clone();
        var transform = Kfac.Build(Through(net, OutputLikelihood.Categorical), net, priorPrecision: 0.5);
        var state = Feed(transform, p, (x, y), 30);
        if (corrected) state = Correct(transform, state, (x, y), 30);
        Assert.That(state.IsCorrected, Is.EqualTo(corrected));
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
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Kfac.Build(model, module, convFactors: (KfacConvFactors)7))!.ParamName, Is.EqualTo("convFactors"));
    }

    [Test]
    public void SinglePrecisionFactorsAreEigendecomposedInTheirPrecisionEvenWhenRankDeficient()
    {
        // 300 ReLU features seen on 40 data: A has rank 41 at most.
        manual_seed(30);
        var net = nn.Sequential(("hidden", nn.Linear(5, 300)), ("act", nn.ReLU()), ("out", nn.Linear(300, 3)));
        var g = new Generator(31);
        var x = randn(new long[] { 40, 5 }, generator: g);
        var y = randint(0, 3, new long[] { 40 }, generator: g);
        var state = Feed(Kfac.Build(Through(net, OutputLikelihood.Categorical), net, sampled: true), ParameterTree.FromModule(net).Clone(), (x, y), 20);
        foreach (var layer in state.Layers)
        {
            var (la, qa, lg, qg) = state.Eigen()[layer.Key];
            Assert.That(la.dtype, Is.EqualTo(ScalarType.Float32));
            var a = (state.FactorASum[layer.Key] / state.DataCount).to(float64);
            var (l64, _) = linalg.eigh(a);
            // Single precision: eigenvalues within a few ulps of the largest, the factor reconstructed to ~1e-6.
            Assert.That((la.to(float64) - l64.clamp_min(0)).abs().max().item<double>(), Is.LessThan(1e-5 * l64.max().item<double>()), layer.Key);
            var reconstructed = (qa * la).mm(qa.t()).to(float64);
            Assert.That(RelativeError(reconstructed, a), Is.LessThan(1e-5), layer.Key);
            Assert.That(isfinite(lg).all().item<bool>() && isfinite(qg).all().item<bool>(), layer.Key);
        }
    }

    [Test]
    public void ReduceStatesSaveAndLoadAndRefuseAnExpandTransform()
    {
        manual_seed(28);
        var net = new SmallNet(3);
        var g = new Generator(29);
        var x = randn(new long[] { 12, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 12 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var state = Feed(Kfac.Build(model, net, convFactors: KfacConvFactors.Reduce), ParameterTree.FromModule(net).Clone(), (x, y), 6);
        var path = Path.Combine(Path.GetTempPath(), $"kfac-{Guid.NewGuid():N}.state");
        StateFile.Save(path, state);
        var back = StateFile.Load<KfacLaplaceState>(path);
        File.Delete(path);
        Assert.That(back.ConvFactors, Is.EqualTo(KfacConvFactors.Reduce));
        TensorAssert.Same(back.DensePrecision(), state.DensePrecision());
        var e = Assert.Throws<ArgumentException>(() => Kfac.Build(model, net).Update(back, (x, y)))!;
        Assert.That(e.Message, Does.Contain("Reduce").And.Contain("Expand"));
    }

    /// <summary>The eigenvalue-correction pass over <paramref name="data"/> in batches.</summary>
    private static KfacLaplaceState Correct(Kfac<Batch> transform, KfacLaplaceState state, Batch data, long batchSize)
    {
        foreach (var batch in TestModels.Batches(data, batchSize)) state = transform.UpdateEigenvalueCorrection(state, batch, inplace: true);
        return state;
    }

    [Test]
    public void CorrectedEigenvaluesAreTheDiagonalOfTheDenseGgnInTheKfacEigenbasis()
    {
        manual_seed(32);
        var net = new SmallNet(3);
        var g = new Generator(33);
        var x = randn(new long[] { 20, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 20 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var p = ParameterTree.FromModule(net).Clone();
        var transform = Kfac.Build(model, net, priorPrecision: 0.3);
        var state = Feed(transform, p, (x, y), 8);
        var kfac = state.Layers.ToDictionary(l => l.Key, l => state.CurvatureEigenvalues(l));
        state = Correct(transform, state, (x, y), 8);
        Assert.That(state.IsCorrected && state.CorrectionCount == 20);
        var ggn = Feed(DenseGgn.Build(model, initPrecision: 0.0, module: net), p, (x, y), 8).Precision;
        foreach (var layer in state.Layers)
        {
            var (_, qa, _, qg) = state.Eigen()[layer.Key];
            var q = KfacLaplaceState.Kron(qg, qa);
            var idx = tensor(state.MatrixIndex(layer));
            var block = ggn.index_select(0, idx).index_select(1, idx);
            var expected = q.t().mm(block).mm(q).diagonal().reshape(qg.shape[0], qa.shape[0]);
            TensorAssert.Close(state.CurvatureEigenvalues(layer), expected, 1e-8, 1e-10, layer.Key);
            // The layer's trace is exact; KFAC's eigenvalues differ from the diagonal.
            Assert.That(state.CurvatureEigenvalues(layer).sum().item<double>(), Is.EqualTo(block.trace().item<double>()).Within(1e-9).Percent, layer.Key);
            Assert.That(RelativeError(kfac[layer.Key], expected), Is.GreaterThan(1e-3), layer.Key);
        }
    }

    [Test]
    public void ForOneLinearLayerWithOneOutputTheCorrectedEigenvaluesAreKfacs()
    {
        manual_seed(34);
        var module = nn.Linear(6, 1, dtype: float64);
        var g = new Generator(35);
        var x = randn(new long[] { 30, 6 }, dtype: float64, generator: g);
        var y = randn(new long[] { 30, 1 }, dtype: float64, generator: g);
        var transform = Kfac.Build(Through(module, OutputLikelihood.Normal(0.4)), module);
        var state = Feed(transform, ParameterTree.FromModule(module).Clone(), (x, y), 10);
        var layer = state.Layers.Single();
        var kfac = state.CurvatureEigenvalues(layer);
        state = Correct(transform, state, (x, y), 7);
        Assert.That(state.IsCorrected);
        TensorAssert.Close(state.CurvatureEigenvalues(layer), kfac, 1e-10, 1e-10);
    }

    [Test]
    public void DrawsAndTheEvidenceUseTheCorrectedEigenvalues()
    {
        manual_seed(36);
        var net = nn.Sequential(("hidden", nn.Linear(3, 4, dtype: float64)), ("act", nn.Tanh()), ("out", nn.Linear(4, 2, dtype: float64)));
        var g = new Generator(37);
        var x = randn(new long[] { 50, 3 }, dtype: float64, generator: g);
        var y = randint(0, 2, new long[] { 50 }, generator: g);
        var p = ParameterTree.FromModule(net).Clone();
        var transform = Kfac.Build(Through(net, OutputLikelihood.Categorical), net, priorPrecision: 2);
        var state = Correct(transform, Feed(transform, p, (x, y), 25), (x, y), 25);
        const long count = 20000;
        var draws = state.Sample(count, seed: 4, temperature: 0.5);
        var groups = MarginalLikelihood.Groups(state);
        foreach (var (layer, i) in state.Layers.Select((l, i) => (l, i)))
        {
            var s = state.EigenvalueCorrectionSum[layer.Key];
            var (la, qa, lg, qg) = state.Eigen()[layer.Key];
            Assert.That(RelativeError(s, lg.unsqueeze(1) * la.unsqueeze(0)), Is.GreaterThan(1e-3), "the corrections differ from KFAC's eigenvalues");
            TensorAssert.Same(groups[i].CurvatureEigenvalues, s.flatten(), layer.Key);
            // Each draw's deviation in the eigenbasis, Q_Gᵀ (W − Ŵ) Q_A, has independent entries of variance T / (s + δ).
            var w = cat(new[] { draws[layer.Weight], draws[layer.Bias].unsqueeze(2) }, 2) - state.WeightMatrix(layer);
            var rotated = qg.t().matmul(w).matmul(qa);
            var variance = rotated.square().mean(new long[] { 0 });
            var expected = 0.5 / (s + 2);
            // The sample variance of 20,000 normal draws has relative sd √(2/20000) = 0.01.
            Assert.That(((variance - expected) / expected).abs().max().item<double>(), Is.LessThan(0.05), layer.Key);
        }
        // The draws' covariance is the inverse of the corrected dense precision.
        var flat = cat(draws.Select(p.Names).Leaves.Select(t => t.reshape(count, -1)).ToArray(), 1);
        var centred = flat - flat.mean(new long[] { 0 });
        Assert.That(RelativeError(centred.t().mm(centred) / (count - 1), 0.5 * linalg.inv(state.DensePrecision())), Is.LessThan(0.1));
    }

    [Test]
    public void CorrectionsSaveAndLoadAndFactorsRefuseBatchesThatWouldMakeThemStale()
    {
        manual_seed(38);
        var net = new SmallNet(3);
        var g = new Generator(39);
        var x = randn(new long[] { 12, 1, 4, 4 }, dtype: float64, generator: g);
        var y = randint(0, 3, new long[] { 12 }, generator: g);
        var model = Through(net, OutputLikelihood.Categorical);
        var transform = Kfac.Build(model, net, sampled: true);
        var state = Feed(transform, ParameterTree.FromModule(net).Clone(), (x, y), 6);
        Assert.That(state.IsCorrected, Is.False);
        // The copying form leaves its input as it was and gives what the in-place form writes.
        var copy = transform.UpdateEigenvalueCorrection(state, (x, y));
        Assert.That(state.IsCorrected, Is.False);
        Assert.That(copy.CorrectionCount, Is.EqualTo(12));
        state = Correct(transform, state, (x, y), 12);
        foreach (var layer in state.Layers) TensorAssert.Same(copy.EigenvalueCorrectionSum[layer.Key], state.EigenvalueCorrectionSum[layer.Key], layer.Key);
        state.ClearEigenvalueCorrection();
        state = Correct(transform, state, (x, y), 6);
        var path = Path.Combine(Path.GetTempPath(), $"kfac-{Guid.NewGuid():N}.state");
        StateFile.Save(path, state);
        var back = StateFile.Load<KfacLaplaceState>(path);
        File.Delete(path);
        Assert.That(back.CorrectionCount, Is.EqualTo(12));
        foreach (var layer in state.Layers) TensorAssert.Same(back.CurvatureEigenvalues(layer), state.CurvatureEigenvalues(layer), layer.Key);
        TensorAssert.Same(back.DensePrecision(), state.DensePrecision());

        // Adding a batch to the factors would change the eigenbases the corrections were measured in.
        var e = Assert.Throws<InvalidOperationException>(() => transform.Update(back, (x, y)))!;
        Assert.That(e.Message, Does.Contain("stale").And.Contain("ClearEigenvalueCorrection"));
        back.ClearEigenvalueCorrection();
        Assert.That(back.IsCorrected, Is.False);
        back = transform.Update(back, (x, y), inplace: true);
        Assert.That(back.DataCount, Is.EqualTo(24));

        // The correction pass uses the fit's curvature and layers.
        Assert.That(Assert.Throws<ArgumentException>(() => Kfac.Build(model, net).UpdateEigenvalueCorrection(state, (x, y)))!.Message,
            Does.Contain("sampled").And.Contain("exact"));
        Assert.That(Assert.Throws<ArgumentException>(() => Kfac.Build(model, net, sampled: true, layers: new[] { "fc" }).UpdateEigenvalueCorrection(state, (x, y)))!.Message,
            Does.Contain("conv, fc"));
        Assert.Throws<InvalidOperationException>(() => transform.UpdateEigenvalueCorrection(transform.Init(ParameterTree.FromModule(net).Clone()), (x, y)));

        // A file written before the corrections existed loads without any.
        var old = StateFile.Load<KfacLaplaceState>(Path.Combine(TestContext.CurrentContext.TestDirectory, "Serialization", "Fixtures", "KfacLaplace.v2.state"));
        Assert.That(old.IsCorrected, Is.False);
        Assert.That(old.EigenvalueCorrectionSum["."].shape, Is.EqualTo(new long[] { 2, 3 }));
    }
}
