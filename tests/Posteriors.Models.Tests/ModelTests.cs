using Posteriors.Models;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models.Tests;

public class ModelTests
{
    /// <summary>
    /// Builds, evaluates and differentiates a classifier's log posterior, in float64: the value equals the mean
    /// log-softmax of the labels plus the prior / N computed by hand, every parameter gets a gradient, and the
    /// directional derivative along a random direction matches a central finite difference (truncation O(h²), rounding ≈ 1e-16 / h ≈ 1e-9).
    /// </summary>
    private static void CheckClassifier(nn.Module<Tensor, Tensor> model, Tensor x, Tensor y, long expectedParameters, int classes)
    {
        model.to(ScalarType.Float64);
        var posterior = new ClassificationPosterior(model, dataSize: 1000, priorSd: 0.5);
        var theta = posterior.InitialParameters();
        Assert.That(theta.NumberOfElements, Is.EqualTo(expectedParameters));

        var (value, aux, grad) = Autodiff.ValueAndGrad(posterior.LogPosterior, theta, (x, y));
        Assert.That(aux!.shape, Is.EqualTo(new long[] { x.shape[0], classes }));
        var byHand = nn.functional.log_softmax(aux, 1).gather(1, y.unsqueeze(1)).mean().item<double>()
                     + DiagNormal.LogProb(theta, 0, 0.5).item<double>() / 1000;
        Assert.That(value.item<double>(), Is.EqualTo(byHand).Within(1e-9));
        for (var i = 0; i < grad.Count; i++)
            Assert.That(grad.Leaves[i].abs().sum().item<double>(), Is.GreaterThan(0), $"no gradient for {grad.Names[i]}");

        var direction = theta.RandnLike(new Generator(5));
        const double h = 1e-7;   // small enough that no ReLU or max-pool switches branch within ±h
        double At(double t) => posterior.LogPosterior(theta.Add(direction, t), (x, y)).Value.item<double>();
        var numeric = (At(h) - At(-h)) / (2 * h);
        var analytic = grad.Dot(direction).item<double>();
        Assert.That(analytic, Is.EqualTo(numeric).Within(1e-6 * Math.Max(1, Math.Abs(numeric))));
    }

    [Test]
    public void SmallCnnBuildsEvaluatesAndDifferentiates()
    {
        manual_seed(1);
        var x = rand(4, 1, 28, 28, dtype: ScalarType.Float64);
        var y = tensor(new long[] { 0, 3, 9, 1 });
        // conv1 1·8·9+8, conv2 8·16·9+16, fc1 784·32+32, fc2 32·10+10
        CheckClassifier(new SmallCnn(channels1: 8, channels2: 16, hidden: 32), x, y, 80 + 1168 + 25120 + 330, 10);
        Assert.That(ParameterTree.FromModule(new SmallCnn()).NumberOfElements, Is.EqualTo(421_642));
    }

    [Test]
    public void MlpAndLogisticRegressionBuildEvaluateAndDifferentiate()
    {
        manual_seed(2);
        var x = randn(6, 5, dtype: ScalarType.Float64);
        var y = tensor(new long[] { 0, 1, 2, 2, 1, 0 });
        CheckClassifier(new MlpClassifier(5, new[] { 7, 4 }, 3), x, y, 5 * 7 + 7 + 7 * 4 + 4 + 4 * 3 + 3, 3);
        CheckClassifier(new LogisticRegression(5, 3), x, y, 18, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MlpClassifier(5, new[] { 0 }, 3));
    }

    [Test]
    public void CnnLstmBuildsEvaluatesAndDifferentiates()
    {
        manual_seed(3);
        var tokens = randint(0, 50, new long[] { 3, 16 });
        var y = tensor(new long[] { 0, 1, 1 });
        // embedding 50·8, conv 8·6·5+6, LSTM 4·5·(6+5)+2·4·5, dense 5·2+2
        CheckClassifier(new CnnLstm(vocabulary: 50, embedding: 8, filters: 6, hidden: 5), tokens, y, 400 + 246 + 260 + 12, 2);
        Assert.That(ParameterTree.FromModule(new CnnLstm()).NumberOfElements, Is.EqualTo(2_639_246));
    }

    [Test]
    public void BayesianLinearRegressionRecoversTheNoiseScale()
    {
        var (x, y, _) = Synthetic.LinearRegression(400, 3, noise: 0.5, seed: 2);
        var model = new BayesianLinearRegression(3, 400);
        var theta = model.InitialParameters();
        var (value, aux, grad) = Autodiff.ValueAndGrad(model.LogPosterior, theta, (x, y));
        Assert.That(aux!.shape, Is.EqualTo(new long[] { 400 }));
        // At θ = 0, σ = 1: mean log N(y; 0, 1) plus the prior at 0 (3 + 1 coefficients at s = 1 and log σ at 0) / N.
        var expected = (-0.5 * y.square() - 0.5 * Math.Log(2 * Math.PI)).mean().item<float>() + 5 * -0.5 * Math.Log(2 * Math.PI) / 400;
        Assert.That(value.item<float>(), Is.EqualTo(expected).Within(1e-5));
        Assert.That(grad["log_noise"].item<float>(), Is.Not.EqualTo(0f));
        // Gradient ascent to the mode: the noise scale approaches the true 0.5.
        var state = theta.Clone();
        for (var i = 0; i < 600; i++)
        {
            var g = Autodiff.ValueAndGrad(model.LogPosterior, state, (x, y)).Gradient;
            state = state.Add(g, 0.05);
        }
        Assert.That(state["log_noise"].exp().item<float>(), Is.EqualTo(0.5f).Within(0.05f));
    }
}
