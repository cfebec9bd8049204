using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Trees;

public class DiagNormalTests
{
    [Test]
    public void LogProbMatchesTheClosedForm()
    {
        var x = ParameterTree.From(("a", tensor(new[] { 0.5, -1.0 })), ("b", tensor(new[,] { { 2.0 } })));
        var mean = x.Map(t => zeros_like(t) + 0.25);
        var sd = x.Map(t => ones_like(t) * 2);
        double expected = 0;
        foreach (var v in new[] { 0.5, -1.0, 2.0 })
            expected += -0.5 * Math.Pow((v - 0.25) / 2, 2) - Math.Log(2) - 0.5 * Math.Log(2 * Math.PI);
        Assert.That(DiagNormal.LogProb(x, mean, sd).item<double>(), Is.EqualTo(expected).Within(1e-12));
        var unnormalised = expected + 3 * (Math.Log(2) + 0.5 * Math.Log(2 * Math.PI));
        Assert.That(DiagNormal.LogProb(x, mean, sd, normalize: false).item<double>(), Is.EqualTo(unnormalised).Within(1e-12));
        Assert.That(DiagNormal.LogProb(x, 0.25, 2).item<double>(), Is.EqualTo(expected).Within(1e-12));
        Assert.Throws<ArgumentOutOfRangeException>(() => DiagNormal.LogProb(x, 0, -1));
    }

    [Test]
    public void SamplesHaveTheRequestedMomentsForEveryShape()
    {
        // 10,000 draws: the standard error of a mean with sd ≤ 2 is ≤ 0.02 and of a variance ≤ 4·√(2/10⁴) ≈ 0.057,
        // so 0.1 is more than 4 standard errors for the mean and ~1.8 for sd² = 4; we compare sd (error ≤ 0.03).
        var g = new Generator(11);
        var mean = ParameterTree.From(("w", tensor(new[,] { { 1.0, -2.0 }, { 0.5, 3.0 } })), ("b", tensor(new[] { 0.0 })));
        var sd = ParameterTree.From(("w", tensor(new[,] { { 0.5, 1.0 }, { 2.0, 0.1 } })), ("b", tensor(new[] { 1.5 })));
        var draws = DiagNormal.Sample(mean, sd, 10_000, g);
        Assert.That(draws["w"].shape, Is.EqualTo(new long[] { 10_000, 2, 2 }));
        Assert.That((draws["w"].mean(new long[] { 0 }) - mean["w"]).abs().max().item<double>(), Is.LessThan(0.1));
        Assert.That((draws["w"].std(0) - sd["w"]).abs().max().item<double>(), Is.LessThan(0.1));
        Assert.That((draws["b"].std(0) - sd["b"]).abs().max().item<double>(), Is.LessThan(0.1));
        var one = DiagNormal.Sample(mean, sd, g);
        Assert.That(one["w"].shape, Is.EqualTo(new long[] { 2, 2 }));
    }
}
