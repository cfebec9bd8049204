using Posteriors.Modeling;
using Posteriors.Models.Zoo;
using Posteriors.Testing;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models.Tests;

/// <summary>The attributed (generated) models agree with the hand-written log posteriors and take gradients.</summary>
public class ZooModelTests
{
    [Test]
    public void PosteriorTemperatureIsOneOverTheModelsDatasetSize()
    {
        var model = new LinearRegressionModel(3);
        var e = Assert.Throws<InvalidOperationException>(() => model.PosteriorTemperature());
        Assert.That(e!.Message, Does.Contain("DatasetSize"));
        model.DatasetSize = 400;
        Assert.That(model.PosteriorTemperature(), Is.EqualTo(1.0 / 400));
    }

    [Test]
    public void CnnClassifierMatchesTheHandWrittenPosterior()
    {
        manual_seed(4);
        var model = new CnnClassifier(channels1: 4, channels2: 8, hidden: 16) { DatasetSize = 500 };
        var x = rand(3, 1, 28, 28);
        var y = tensor(new long[] { 2, 7, 0 });
        var theta = model.InitialParameters();
        Assert.That(theta.Names, Does.Contain("Net.conv1.weight"));
        var generated = Autodiff.ValueAndGrad(model.LogPosterior, theta, (x, y));

        var byHand = new ClassificationPosterior(model.Net, 500, priorSd: 1);
        var renamed = new ParameterTree(theta.Select(p => new KeyValuePair<string, Tensor>(p.Key["Net.".Length..], p.Value)));
        var reference = Autodiff.ValueAndGrad(byHand.LogPosterior, renamed, (x, y));
        Assert.That(generated.Value.item<float>(), Is.EqualTo(reference.Value.item<float>()).Within(1e-5));
        for (var i = 0; i < theta.Count; i++)
        {
            TensorAssert.Close(generated.Gradient.Leaves[i], reference.Gradient.Leaves[i], 1e-4, 1e-6, theta.Names[i]);
            TensorAssert.Finite(generated.Gradient.Leaves[i], theta.Names[i]);
        }
        Assert.That(model.Forward(theta, x).shape, Is.EqualTo(new long[] { 3, 10 }));
    }

    [Test]
    public void CnnLstmClassifierUsesTheLiteraturePrior()
    {
        manual_seed(5);
        var model = new CnnLstmClassifier(vocabulary: 100) { DatasetSize = 25_000 };
        var theta = model.InitialParameters();
        // log N(θ; 0, 1/40) summed: −½·40·Σθ² − n·(½ log 2π + log σ) with σ = 1/√40.
        var n = theta.NumberOfElements;
        var expected = -20 * theta.SumOf(t => t.square()).item<float>() - n * (0.5 * Math.Log(2 * Math.PI) - 0.5 * Math.Log(40));
        Assert.That(model.LogPrior(theta).item<float>(), Is.EqualTo(expected).Within(Math.Abs(expected) * 1e-5));
        var tokens = randint(0, 100, new long[] { 2, 20 });
        var (value, _, grad) = Autodiff.ValueAndGrad(model.LogPosterior, theta, (tokens, tensor(new long[] { 0, 1 })));
        Assert.That(double.IsFinite(value.item<float>()), Is.True, $"value {value.item<float>()}");
        Assert.That(grad["Net.lstm.weight_hh_l0"].abs().sum().item<float>(), Is.GreaterThan(0));
    }

    [Test]
    public void MlpAndLogisticRegressionModelsTakeGradients()
    {
        manual_seed(6);
        var x = randn(5, 4);
        var y = tensor(new long[] { 0, 1, 2, 1, 0 });
        foreach (var (name, value, grad) in new[]
                 {
                     Evaluate("mlp", new MlpModel(4, new[] { 6 }, 3) { DatasetSize = 100 }, x, y),
                     Evaluate("logistic", new LogisticRegressionModel(4, 3) { DatasetSize = 100 }, x, y),
                 })
        {
            Assert.That(double.IsFinite(value), Is.True, name);
            Assert.That(grad.SumOf(t => t.abs()).item<float>(), Is.GreaterThan(0), name);
        }
    }

    private static (string, double, ParameterTree) Evaluate(string name, Modeling.IForwardModel model, Tensor x, Tensor y)
    {
        var r = Autodiff.ValueAndGrad<(Tensor, Tensor)>(model.LogPosterior, model.InitialParameters(), (x, y));
        return (name, r.Value.item<float>(), r.Gradient);
    }

    [Test]
    public void LinearRegressionModelEqualsTheHandWrittenOne()
    {
        // LogNormal(0, 1) on σ plus the log-Jacobian of σ = exp(u) is N(0, 1) on u = log σ: the hand-written model's prior.
        var (x, y, _) = Synthetic.LinearRegression(64, 3, noise: 0.5, seed: 8);
        var generated = new LinearRegressionModel(3) { DatasetSize = 64 };
        var byHand = new BayesianLinearRegression(3, 64);
        var g = ParameterTree.From(("Weight", tensor(new[] { 0.3f, -0.2f, 0.1f }).reshape(3, 1)), ("Bias", tensor(new[] { 0.4f })),
            ("log_NoiseScale", tensor(new[] { -0.3f })));
        var h = ParameterTree.From(("weight", g["Weight"]), ("bias", g["Bias"]), ("log_noise", g["log_NoiseScale"]));
        var a = Autodiff.ValueAndGrad(generated.LogPosterior, g, (x, y));
        var b = Autodiff.ValueAndGrad(byHand.LogPosterior, h, (x, y));
        Assert.That(a.Value.item<float>(), Is.EqualTo(b.Value.item<float>()).Within(1e-5));
        TensorAssert.Close(a.Gradient["log_NoiseScale"], b.Gradient["log_noise"], rtol: 1e-4, atol: 1e-6);
        TensorAssert.Close(a.Gradient["Weight"], b.Gradient["weight"], rtol: 1e-4, atol: 1e-6);
    }
}
