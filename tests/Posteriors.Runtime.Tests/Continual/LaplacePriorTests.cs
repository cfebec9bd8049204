using Posteriors.Continual;
using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Continual;

public class LaplacePriorTests
{
    private static (ParameterTree Mean, ParameterTree Precision) Posterior() =>
        (ParameterTree.From(("w", tensor(new[] { 1.0, -2.0 })), ("b", tensor(new[] { 0.5 }))),
         ParameterTree.From(("w", tensor(new[] { 4.0, 0.0 })), ("b", tensor(new[] { 2.0 }))));

    [Test]
    public void LogProbAndGradientAreThoseOfTheScaledDiagonalGaussian()
    {
        var (mean, precision) = Posterior();
        var prior = new LaplacePrior(mean, precision, lambda: 3);
        var theta = ParameterTree.From(("w", tensor(new[] { 2.0, 5.0 })), ("b", tensor(new[] { 0.0 })));
        // −½·3·(4·1² + 0·7² + 2·0.5²) = −6.75
        var (value, _, grad) = Autodiff.ValueAndGrad<int>((p, _) => prior.LogProb(p), theta, 0);
        Assert.That(value.item<double>(), Is.EqualTo(-6.75).Within(1e-12));
        Assert.That(grad["w"].data<double>().ToArray(), Is.EqualTo(new[] { -3 * 4 * 1.0, 0.0 }));
        Assert.That(grad["b"].item<double>(), Is.EqualTo(-3 * 2 * -0.5).Within(1e-12));
        Assert.That(new LaplacePrior(mean, precision, 0).LogProb(theta).item<double>(), Is.EqualTo(0));
        Assert.That(prior.ScaledPrecision()["b"].item<double>(), Is.EqualTo(6));
    }

    [Test]
    public void BadLambdaOrPrecisionIsRejectedByName()
    {
        var (mean, precision) = Posterior();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LaplacePrior(mean, precision, -1));
        Assert.That(e!.ParamName, Is.EqualTo("lambda"));
        var negative = precision.Map(p => -p);
        Assert.That(() => new LaplacePrior(mean, negative, 1), Throws.ArgumentException.With.Message.Contains("'w'"));
        var wrongShape = ParameterTree.From(("w", zeros(3)), ("b", zeros(1)));
        Assert.That(() => new LaplacePrior(mean, wrongShape, 1), Throws.ArgumentException.With.Message.Contains("'w'"));
    }

    [Test]
    public void SavesAndLoadsThroughStateFile()
    {
        var (mean, precision) = Posterior();
        var prior = new LaplacePrior(mean, precision, 100);
        var path = Path.Combine(Path.GetTempPath(), $"laplace-prior-{Guid.NewGuid():N}.state");
        try
        {
            StateFile.Save(path, prior);
            var loaded = StateFile.Load<LaplacePrior>(path);
            Assert.That(loaded.Lambda, Is.EqualTo(100));
            TensorAssert.Same(loaded.Mean.Flatten(), mean.Flatten());
            TensorAssert.Same(loaded.Precision.Flatten(), precision.Flatten());
        }
        finally { File.Delete(path); }
    }
}
