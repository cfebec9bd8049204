using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Curvature;

public class CurvatureProductsTests
{
    private static readonly OutputLikelihood Bernoulli = OutputLikelihood.Bernoulli;

    [Test]
    public void HessianVectorProductEqualsTheAnalyticLogisticHessian()
    {
        var data = TestModels.LinearData(1, OutputLikelihoodKind.Bernoulli);
        var p = TestModels.LinearParams(1);
        var perDatum = TestModels.LinearPerDatum(Bernoulli);
        // −∇² Σᵢ log πᵢ = Σᵢ pᵢ(1 − pᵢ) x̃ᵢ x̃ᵢᵀ + I  (prior N(0, I) split as 1/N per datum), x̃ = [x, 1].
        var xt = cat(new[] { data.X, ones(TestModels.N, 1, dtype: float64) }, 1);
        var prob = nn.functional.linear(data.X, p["weight"], p["bias"]).squeeze(1).sigmoid();
        var analytic = xt.t().mm(xt * (prob * (1 - prob)).unsqueeze(1)) + eye(11, dtype: float64);

        var dense = Hessian.Dense(perDatum, p, data);
        Assert.That(TestModels.MaxDiff(-dense, analytic), Is.LessThan(1e-10));

        var v = p.RandnLike(new Generator(1));
        var hv = Hessian.VectorProduct(PerDatum.Mean(perDatum), p, data, v).Flatten() * TestModels.N;
        Assert.That(TestModels.MaxDiff(-hv, analytic.mv(v.Flatten())), Is.LessThan(1e-10));
        // The per-datum form follows Dense's convention (the batch sum) with no factor N.
        var sumHv = Hessian.SumVectorProduct(perDatum, p, data, v).Flatten();
        TensorAssert.Close(sumHv, dense.mv(v.Flatten()), rtol: 1e-10, atol: 1e-10, what: "H v of the batch sum");
    }

    [Test]
    public void FisherAndGgnVectorProductsEqualTheirDenseMatrices()
    {
        var data = TestModels.LinearData(3, OutputLikelihoodKind.Categorical);
        var p = TestModels.LinearParams(3);
        var model = TestModels.LinearModel(OutputLikelihood.Categorical);
        var perDatum = model.PerDatumLogDensity();
        var v = p.RandnLike(new Generator(2));

        var fisher = EmpiricalFisher.Dense(perDatum, p, data);
        var fv = EmpiricalFisher.VectorProduct(perDatum, p, data, v).Flatten();
        Assert.That(TestModels.MaxDiff(fv, fisher.mv(v.Flatten())), Is.LessThan(1e-10));
        Assert.That(TestModels.MaxDiff(EmpiricalFisher.Diagonal(perDatum, p, data).Flatten(), fisher.diagonal()), Is.LessThan(1e-10));

        var ggn = Ggn.Dense(model, p, data);
        Assert.That(TestModels.MaxDiff(ggn, TestModels.BruteForceGgn(model, p, data)), Is.LessThan(1e-10));
        var gv = Ggn.VectorProduct(model, p, data, v).Flatten();
        Assert.That(TestModels.MaxDiff(gv, ggn.mv(v.Flatten())), Is.LessThan(1e-10));
        Assert.That(TestModels.MaxDiff(Ggn.Diagonal(model, p, data).Flatten(), ggn.diagonal()), Is.LessThan(1e-10));
    }

    [Test]
    public void ConjugateGradientsSolveTheDampedFisherSystemLikeADenseSolve()
    {
        var data = TestModels.LinearData(3, OutputLikelihoodKind.Categorical);
        var p = TestModels.LinearParams(3);
        var perDatum = TestModels.LinearModel(OutputLikelihood.Categorical).PerDatumLogDensity();
        var b = p.RandnLike(new Generator(3));
        const double lambda = 0.1;
        // The product goes through the per-sample gradient matrix G computed once (F v = Gᵀ G v), so CG itself is what is timed.
        var g = PerSampleGradients.Matrix(perDatum, p, data);
        var result = ConjugateGradients.Solve(v => v.Unflatten(g.t().mv(g.mv(v.Flatten()))), b, damping: lambda, tolerance: 1e-12);
        var fisher = EmpiricalFisher.Dense(perDatum, p, data);
        var expected = linalg.solve(fisher + lambda * eye(fisher.shape[0], dtype: float64), b.Flatten());
        Assert.That(result.Converged, Is.True, $"residual {result.ResidualNorm} after {result.Iterations} iterations");
        Assert.That(TestModels.MaxDiff(result.Solution.Flatten(), expected), Is.LessThan(1e-8));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConjugateGradients.Solve(v => v, b, damping: -1));
    }

    [Test]
    public void PackedLowerTriangleRoundTripsRowByRow()
    {
        var l = tensor(new double[,] { { 1, 0, 0 }, { 2, 3, 0 }, { 4, 5, 6 } });
        var packed = LowerTriangular.Pack(l);
        Assert.That(packed.data<double>().ToArray(), Is.EqualTo(new double[] { 1, 2, 3, 4, 5, 6 }));
        Assert.That(TestModels.MaxDiff(LowerTriangular.Unpack(packed), l), Is.EqualTo(0));
        Assert.That(LowerTriangular.Dimension(10), Is.EqualTo(4));
        Assert.Throws<ArgumentException>(() => LowerTriangular.Dimension(7));
        Assert.Throws<ArgumentException>(() => LowerTriangular.Pack(zeros(2, 3)));
    }

    [Test]
    public void LinearisedPredictiveOfALinearModelIsExact()
    {
        // For f = W x + b the linearisation is exact: cov_i = Σ_p x̃_ip² σ²_p on the output's own block.
        var data = TestModels.LinearData(2, OutputLikelihoodKind.Normal);
        var p = TestModels.LinearParams(2);
        var variance = p.Map(t => rand(t.shape, dtype: float64, generator: new Generator(4)) + 0.1);
        var (mean, cov) = LinearisedPredictive.Compute(q => nn.functional.linear(data.X, q["weight"], q["bias"]), p, variance);
        Assert.That(TestModels.MaxDiff(mean, nn.functional.linear(data.X, p["weight"], p["bias"])), Is.LessThan(1e-12));
        var xt2 = cat(new[] { data.X, ones(TestModels.N, 1, dtype: float64) }, 1).square();
        for (var k = 0; k < 2; k++)
        {
            var sigma2 = cat(new[] { variance["weight"][k], variance["bias"][k].reshape(1) });
            Assert.That(TestModels.MaxDiff(cov[.., k, k], xt2.mv(sigma2)), Is.LessThan(1e-12), $"output {k}");
        }
        Assert.That(cov[.., 0, 1].abs().max().item<double>(), Is.LessThan(1e-12), "outputs share no parameters");
    }

    [Test]
    public void LastLayerSubsetNamesTheFinalModule()
    {
        var tree = ParameterTree.From(("fc1.weight", zeros(2, 2)), ("fc1.bias", zeros(2)), ("fc2.weight", zeros(1, 2)), ("fc2.bias", zeros(1)));
        Assert.That(Subsets.LastLayer(tree), Is.EqualTo(new[] { "fc2.weight", "fc2.bias" }));
        Assert.That(Subsets.WithPrefix(tree, "fc1."), Is.EqualTo(new[] { "fc1.weight", "fc1.bias" }));
        Assert.Throws<ArgumentException>(() => Subsets.WithPrefix(tree, "head."));
    }
}
