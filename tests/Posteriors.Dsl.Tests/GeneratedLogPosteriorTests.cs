using Posteriors.Curvature;
using Posteriors.Dsl.Tests.Models;
using Posteriors.Modeling;
using Posteriors.Optim;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests;

/// <summary>
/// The generated log posterior and its gradient against the same model written out by hand in TorchSharp
/// (log-density formulas typed independently of the runtime's, log Γ from torch.lgamma), in float64 to 1e-6.
/// </summary>
public class GeneratedLogPosteriorTests
{
    private const double Tolerance = 1e-6;
    private const long N = 250;
    private static readonly double Log2Pi = Math.Log(2 * Math.PI);

    private static Tensor Scalar(double v) => tensor(v, dtype: ScalarType.Float64);

    private static Tensor Lgamma(double v) => Scalar(v).lgamma();

    private static (Tensor X, Tensor Y) RegressionBatch(int features, long seed)
    {
        var g = new Generator((ulong)seed);
        var x = randn(new long[] { 12, features }, dtype: ScalarType.Float64, generator: g);
        var y = randn(new long[] { 12 }, dtype: ScalarType.Float64, generator: g);
        return (x, y);
    }

    private static void AssertSame<TBatch>(LogPosterior<TBatch> generated, LogPosterior<TBatch> byHand, ParameterTree at, TBatch batch)
    {
        var a = Autodiff.ValueAndGrad(generated, at, batch);
        var b = Autodiff.ValueAndGrad(byHand, at, batch);
        Assert.That(a.Value.item<double>(), Is.EqualTo(b.Value.item<double>()).Within(Tolerance), "log posterior");
        Assert.That(a.Gradient.Names, Is.EqualTo(b.Gradient.Names));
        for (var i = 0; i < a.Gradient.Count; i++)
        {
            var diff = (a.Gradient.Leaves[i] - b.Gradient.Leaves[i]).abs().max().item<double>();
            Assert.That(diff, Is.LessThan(Tolerance), $"gradient of {a.Gradient.Names[i]}");
            Assert.That(a.Gradient.Leaves[i].abs().sum().item<double>(), Is.GreaterThan(0), $"gradient of {a.Gradient.Names[i]} is zero");
        }
    }

    [Test]
    public void RegressionMatchesHandWrittenFormulaWithJacobianAndNScaling()
    {
        var model = new BayesianRegression { DatasetSize = N };
        var batch = RegressionBatch(3, 1);
        var at = model.SamplePrior(new Generator(7));
        Assert.That(at.Names, Is.EqualTo(new[] { "Weight", "Bias", "log_NoiseScale" }));

        LogPosterior<(Tensor, Tensor)> byHand = (p, b) =>
        {
            var (x, y) = b;
            var u = p["log_NoiseScale"];
            var sigma = u.exp();
            var mu = x.matmul(p["Weight"]).squeeze(1) + p["Bias"];
            var ll = -0.5 * ((y - mu) / sigma).square() - sigma.log() - 0.5 * Log2Pi;
            var prior = (-0.5 * p["Weight"].square() - 0.5 * Log2Pi).sum()                       // Normal(0, 1)
                        + (-(p["Bias"] - 0.5).abs() / 2 - Math.Log(4)).sum()                        // Laplace(0.5, 2)
                        + (0.5 * Math.Log(2 / Math.PI) - 0.5 * sigma.square()).sum() + u.sum();     // HalfNormal(1) + Jacobian
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, batch);
    }

    [Test]
    public void RobustRegressionMatchesHandWrittenFormula()
    {
        var model = new RobustRegression { DatasetSize = N };
        var design = model.Design;
        var batch = RegressionBatch(2, 2);
        var at = model.SamplePrior(new Generator(11));
        Assert.That(at.Names, Is.EqualTo(new[] { "Weight", "Bias", "log_Scale", "log_Spread", "Offset" }));

        LogPosterior<(Tensor, Tensor)> byHand = (p, b) =>
        {
            var (x, y) = b;
            var scale = p["log_Scale"].exp() * p["log_Spread"].exp();
            var mu = (x * design).matmul(p["Weight"]) + p["Bias"] + p["Offset"];
            var z = (y - mu) / scale;
            var ll = Lgamma(2.5) - Lgamma(2) - 0.5 * Math.Log(4 * Math.PI) - scale.log() - 2.5 * (z.square() / 4).log1p();
            var w = p["Weight"] / 2;
            var prior = (Lgamma(2) - Lgamma(1.5) - 0.5 * Math.Log(3 * Math.PI) - Math.Log(2) - 2 * (w.square() / 3).log1p()).sum()   // StudentT(3, 0, 2)
                        + (-Math.Log(5 * Math.PI) - (p["Bias"] / 5).square().log1p()).sum();                                          // Cauchy(0, 5)
            var s = p["log_Scale"].exp();
            prior = prior + (2 * Math.Log(3) - Lgamma(2) + s.log() - 3 * s).sum() + p["log_Scale"].sum();                          // Gamma(2, 3) + Jacobian
            var r = p["log_Spread"].exp();
            prior = prior + (-r.log() - Math.Log(0.7) - 0.5 * Log2Pi - (r.log() - 0.1).square() / (2 * 0.49)).sum() + p["log_Spread"].sum(); // LogNormal
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, batch);
    }

    private static Tensor ClassifierLogits(ParameterTree p, Tensor x) =>
        (nn.functional.tanh(x.matmul(p["Fc1.weight"].t()) + p["Fc1.bias"]).matmul(p["Fc2.weight"].t()) + p["Fc2.bias"]) * p["Temperature"];

    [Test]
    public void ModuleClassifierMatchesHandWrittenFormula()
    {
        var model = new Classifier { DatasetSize = N };
        var g = new Generator(3);
        var x = randn(new long[] { 16, 4 }, dtype: ScalarType.Float64, generator: g);
        var y = randint(0, 3, new long[] { 16 }, generator: g);
        var at = model.SamplePrior(new Generator(5));
        Assert.That(at.Names, Is.EqualTo(new[] { "Fc1.weight", "Fc1.bias", "Fc2.weight", "Fc2.bias", "Temperature" }));

        LogPosterior<(Tensor X, Tensor Y)> byHand = (p, b) =>
        {
            var ll = ClassifierLogits(p, b.X).log_softmax(1).gather(1, b.Y.unsqueeze(1)).squeeze(1);
            Tensor prior = Scalar(0);
            foreach (var name in new[] { "Fc1.weight", "Fc1.bias" }) prior = prior + (-0.5 * p[name].square() - 0.5 * Log2Pi).sum();
            foreach (var name in new[] { "Fc2.weight", "Fc2.bias" }) prior = prior + (-p[name].abs() / 0.5 - Math.Log(1.0)).sum();
            prior = prior + (-0.5 * (p["Temperature"] / 2).square() - Math.Log(2) - 0.5 * Log2Pi).sum();
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, (x, y));

        // The forward part alone: the same logits, differentiable, and the aux output of the log posterior.
        var logits = model.Forward(at, x);
        Assert.That((logits - ClassifierLogits(at, x)).abs().max().item<double>(), Is.LessThan(1e-12));
        Assert.That(model.Likelihood.Kind, Is.EqualTo(OutputLikelihoodKind.Categorical));
        var result = model.LogPosterior(at, (x, y));
        Assert.That(result.Aux, Is.Not.Null);
        Assert.That(result.Aux!.shape, Is.EqualTo(new long[] { 16, 3 }));
    }

    [Test]
    public void ForwardModelFeedsTheGgnLikeAHandWrittenForwardModel()
    {
        // The generated model is a Curvature.IForwardModel: its GGN diagonal (through module binding and Wrt) must equal
        // that of the same network written functionally on the tree's tensors.
        var model = new Classifier { DatasetSize = N };
        var g = new Generator(17);
        var x = randn(new long[] { 8, 4 }, dtype: ScalarType.Float64, generator: g);
        var y = randint(0, 3, new long[] { 8 }, generator: g);
        var at = model.SamplePrior(new Generator(19));
        var byHand = new ForwardModel<(Tensor X, Tensor Y)>((p, b) => ClassifierLogits(p, b.X), b => b.Y, OutputLikelihood.Categorical);
        var generated = Ggn.Diagonal(model, at, (x, y));
        var expected = Ggn.Diagonal(byHand, at, (x, y));
        Assert.That(generated.Names, Is.EqualTo(expected.Names));
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.That((generated.Leaves[i] - expected.Leaves[i]).abs().max().item<double>(), Is.LessThan(1e-9), expected.Names[i]);
            Assert.That(expected.Leaves[i].abs().sum().item<double>(), Is.GreaterThan(0), expected.Names[i]);
        }
        Assert.That(model.Targets((x, y)), Is.SameAs(y));
    }

    [Test]
    public void NormalOutputNetworkMatchesHandWrittenFormula()
    {
        var model = new RegressionNet { DatasetSize = N };
        var g = new Generator(9);
        var x = randn(new long[] { 10, 2 }, dtype: ScalarType.Float64, generator: g);
        var y = randn(new long[] { 10 }, dtype: ScalarType.Float64, generator: g);
        var at = model.SamplePrior(new Generator(13));
        LogPosterior<(Tensor X, Tensor Y)> byHand = (p, b) =>
        {
            var f = (nn.functional.relu(b.X.matmul(p["Hidden.weight"].t()) + p["Hidden.bias"]).matmul(p["Out.weight"].t()) + p["Out.bias"]).squeeze(1);
            var ll = -0.5 * ((b.Y - f) / 0.3).square() - Math.Log(0.3) - 0.5 * Log2Pi;
            var prior = p.SumOf(t => -0.5 * t.square() - 0.5 * Log2Pi);
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, (x, y));
        Assert.That(model.Likelihood.Kind, Is.EqualTo(OutputLikelihoodKind.Normal));
        Assert.That(model.Likelihood.Sigma, Is.EqualTo(0.3));
    }

    [Test]
    public void BernoulliOutputsSumOverTheLabelsOfADatum()
    {
        // [B, K] = [6, 3] logits: one value per datum (the sum of its three label terms), and the mean runs over B only.
        var model = new MultiLabel { DatasetSize = N };
        var g = new Generator(23);
        var x = randn(new long[] { 6, 2 }, dtype: ScalarType.Float64, generator: g);
        var y = (rand(new long[] { 6, 3 }, dtype: ScalarType.Float64, generator: g) > 0.5).to_type(ScalarType.Float64);
        var at = model.SamplePrior(new Generator(29));
        var perDatum = model.LogLikelihoods(at, (x, y));
        Assert.That(perDatum.shape, Is.EqualTo(new long[] { 6 }));
        LogPosterior<(Tensor X, Tensor Y)> byHand = (p, b) =>
        {
            var f = b.X.matmul(p["Weight"]);
            var ll = (b.Y * f - (1 + f.exp()).log()).sum(1);   // y f − log(1 + e^f) per label, summed over the labels
            var prior = (-0.5 * p["Weight"].square() - 0.5 * Log2Pi).sum();
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, (x, y));

        // The GGN factor is diagonal in the labels: L Lᵀ = diag(p (1 − p)).
        var f = model.Forward(at, x).detach();
        var factor = model.Likelihood.HessianFactor(f);
        var p = f.sigmoid();
        Assert.That((factor.matmul(factor.transpose(1, 2)) - (p * (1 - p)).diag_embed()).abs().max().item<double>(), Is.LessThan(1e-12));
    }

    [Test]
    public void LearnedNormalOutputScaleMatchesHandWrittenFormulaAndKeepsTheGgn()
    {
        var model = new LearnedNoiseNet { DatasetSize = N };
        var g = new Generator(41);
        var x = randn(new long[] { 10, 2 }, dtype: ScalarType.Float64, generator: g);
        var y = randn(new long[] { 10 }, dtype: ScalarType.Float64, generator: g);
        var at = model.SamplePrior(new Generator(43));
        Tensor F(ParameterTree p, Tensor inputs) =>
            (nn.functional.relu(inputs.matmul(p["Hidden.weight"].t()) + p["Hidden.bias"]).matmul(p["Out.weight"].t()) + p["Out.bias"]).squeeze(1);
        LogPosterior<(Tensor X, Tensor Y)> byHand = (p, b) =>
        {
            var u = p["log_NoiseScale"];
            var sigma = u.exp();
            var ll = -0.5 * ((b.Y - F(p, b.X)) / sigma).square() - sigma.log() - 0.5 * Log2Pi;
            var prior = (-0.5 * p["Hidden.weight"].square() - 0.5 * Log2Pi).sum() + (-0.5 * p["Hidden.bias"].square() - 0.5 * Log2Pi).sum()
                        + (-0.5 * p["Out.weight"].square() - 0.5 * Log2Pi).sum() + (-0.5 * p["Out.bias"].square() - 0.5 * Log2Pi).sum()
                        + (0.5 * Math.Log(2 / Math.PI) - 0.5 * sigma.square() + u).sum();
            return ll.mean() + prior / N;
        };
        AssertSame(model.LogPosterior, byHand, at, (x, y));

        // The curvature interface uses the member's σ: the GGN equals that of a fixed-σ forward model with the same σ.
        Assert.That(model.Likelihood.Sigma, Is.EqualTo(0.4).Within(1e-12));
        var fixedSigma = new ForwardModel<(Tensor X, Tensor Y)>((p, b) => F(p, b.X).unsqueeze(1), b => b.Y, OutputLikelihood.Normal(0.4));
        var network = at.Select(new[] { "Hidden.weight", "Hidden.bias", "Out.weight", "Out.bias" });
        var generated = Ggn.Diagonal(model, at, (x, y));
        var expected = Ggn.Diagonal(fixedSigma, network, (x, y));
        foreach (var name in expected.Names)
            Assert.That((generated[name] - expected[name]).abs().max().item<double>(), Is.LessThan(1e-9), name);
    }

    [Test]
    public void PriorTermScalesAsOneOverN()
    {
        var batch = RegressionBatch(3, 4);
        var model = new BayesianRegression();
        var at = model.SamplePrior(new Generator(1));
        model.DatasetSize = 10;
        var v10 = model.LogPosterior(at, batch).Value.item<double>();
        model.DatasetSize = 1000;
        var v1000 = model.LogPosterior(at, batch).Value.item<double>();
        var meanLl = model.LogLikelihoods(at, batch).mean().item<double>();
        var prior = model.LogPrior(at).item<double>();
        Assert.That(v10, Is.EqualTo(meanLl + prior / 10).Within(1e-9));
        Assert.That(v1000, Is.EqualTo(meanLl + prior / 1000).Within(1e-9));
    }

    [Test]
    public void DatasetSizeMustBeSetAndPositive()
    {
        var model = new BayesianRegression();
        var at = model.InitialParameters();
        var e = Assert.Throws<InvalidOperationException>(() => model.LogPosterior(at, RegressionBatch(3, 1)));
        Assert.That(e!.Message, Does.Contain("BayesianRegression.DatasetSize"));
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => model.DatasetSize = 0);
        Assert.That(r!.Message, Does.Contain("DatasetSize"));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.DatasetSize = -5);
    }

    [Test]
    public void EvaluationRebindsTensorMembersOnlyForTheCall()
    {
        var model = new BayesianRegression { DatasetSize = N };
        var weight = model.Weight;
        var noise = model.NoiseScale;
        model.LogPosterior(model.SamplePrior(new Generator(2)), RegressionBatch(3, 1));
        Assert.That(model.Weight, Is.SameAs(weight));
        Assert.That(model.NoiseScale, Is.SameAs(noise));
        Assert.That(model.Weight.abs().sum().item<double>(), Is.EqualTo(0));
    }

    [Test]
    public void InitialParametersAreDeclaredValuesInUnconstrainedCoordinates()
    {
        var model = new BayesianRegression();
        model.NoiseScale = full(1, 2.5, dtype: ScalarType.Float64);
        var init = model.InitialParameters();
        Assert.That(init["log_NoiseScale"].item<double>(), Is.EqualTo(Math.Log(2.5)).Within(1e-12));
        Assert.That(model.Constrain(init)["NoiseScale"].item<double>(), Is.EqualTo(2.5).Within(1e-12));
        Assert.That(init["Weight"], Is.Not.SameAs(model.Weight), "initial values are copies");
        model.NoiseScale = full(1, -1.0, dtype: ScalarType.Float64);
        var e = Assert.Throws<InvalidOperationException>(() => model.InitialParameters());
        Assert.That(e!.Message, Does.Contain("NoiseScale"));
    }

    [Test]
    public void LikelihoodThatReturnsAScalarIsRejectedAtRunTime()
    {
        var model = new BatchSummingModel { DatasetSize = N };
        var e = Assert.Throws<InvalidOperationException>(() => model.LogPosterior(model.InitialParameters(), RegressionBatch(1, 1)));
        Assert.That(e!.Message, Does.Contain("shape [B]"));
    }

    [Test]
    public void BatchSumWithKeepdimIsRejectedAtRunTimeWithTheShapeAndB()
    {
        // sum(0, keepdim: true) returns [1]: one-dimensional, but not one value per datum.
        var model = new KeepdimSummingModel { DatasetSize = N };
        var e = Assert.Throws<InvalidOperationException>(() => model.LogPosterior(model.InitialParameters(), RegressionBatch(1, 1)));
        Assert.That(e!.Message, Does.Contain("KeepdimSummingModel.LogLikelihood").And.Contain("[1]").And.Contain("[12]"));
        Assert.Throws<InvalidOperationException>(() => model.LogLikelihoods(model.InitialParameters(), RegressionBatch(1, 1)));
    }

    [Test]
    public void TwoThreadsEvaluateOneModelAtTwoTreesWithoutInterfering()
    {
        // Evaluation does not rebind the model's members, so concurrent evaluations at different trees stay independent.
        var model = new BayesianRegression { DatasetSize = N };
        var batch = RegressionBatch(3, 5);
        var trees = new[] { model.SamplePrior(new Generator(31)), model.SamplePrior(new Generator(37)) };
        var expected = trees.Select(t => model.LogPosterior(t, batch).Value.item<double>()).ToArray();
        Assert.That(expected[0], Is.Not.EqualTo(expected[1]).Within(1e-6));
        var weight = model.Weight;
        var results = new double[2][];
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() =>
        {
            using var scope = NewDisposeScope();
            results[i] = Enumerable.Range(0, 200).Select(_ => model.LogPosterior(trees[i], batch).Value.item<double>()).ToArray();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (var i = 0; i < 2; i++)
            Assert.That(results[i], Has.All.EqualTo(expected[i]).Within(1e-12), $"thread {i}");
        Assert.That(model.Weight, Is.SameAs(weight));
    }

    [Test]
    public void GeneratedLogPosteriorDrivesAnOptimizerToTheMap()
    {
        // y = 2 x₀ − x₁ + 0.5 x₂ + 1 + 0.1 ε, 400 points: the MAP is within a few hundredths of the truth.
        var g = new Generator(21);
        var x = randn(new long[] { 400, 3 }, dtype: ScalarType.Float64, generator: g);
        var y = x.matmul(tensor(new[] { 2.0, -1.0, 0.5 }, dtype: ScalarType.Float64)) + 1 + 0.1 * randn(new long[] { 400 }, dtype: ScalarType.Float64, generator: g);
        var model = new BayesianRegression { DatasetSize = 400 };
        var transform = TorchOptim.Build<(Tensor, Tensor)>(model.LogPosterior, ps => optim.Adam(ps, lr: 0.05));
        var state = transform.Init(model.InitialParameters());
        for (var i = 0; i < 600; i++) state = transform.Update(state, (x, y), inplace: true);
        var w = state.Params["Weight"].squeeze(1);
        Assert.That((w - tensor(new[] { 2.0, -1.0, 0.5 }, dtype: ScalarType.Float64)).abs().max().item<double>(), Is.LessThan(0.05));
        Assert.That(state.Params["Bias"].item<double>(), Is.EqualTo(1).Within(0.05));
        Assert.That(model.Constrain(state.Params)["NoiseScale"].item<double>(), Is.EqualTo(0.1).Within(0.03));
    }
}
