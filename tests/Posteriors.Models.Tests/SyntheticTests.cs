using Posteriors.Models;

namespace Posteriors.Models.Tests;

public class SyntheticTests
{
    [Test]
    public void LinearRegressionIsReproducibleAndShaped()
    {
        var (x1, y1, t1) = Synthetic.LinearRegression(50, 3, 0.1, seed: 4);
        var (x2, y2, _) = Synthetic.LinearRegression(50, 3, 0.1, seed: 4);
        Assert.That(x1.shape, Is.EqualTo(new long[] { 50, 3 }));
        Assert.That(y1.shape, Is.EqualTo(new long[] { 50 }));
        Assert.That(t1["weight"].shape, Is.EqualTo(new long[] { 3, 1 }));
        TensorAssert.Same(x1, x2, "inputs");
        TensorAssert.Same(y1, y2, "labels");
        Assert.Throws<ArgumentOutOfRangeException>(() => Synthetic.LinearRegression(0, 3, 0.1, 1));
    }
}
