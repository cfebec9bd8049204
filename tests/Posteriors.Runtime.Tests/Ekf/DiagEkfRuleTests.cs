using Posteriors.Curvature;
using Posteriors.Ekf;
using Posteriors.Testing;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Ekf;

/// <summary>The diagonal EKF's one-pass rule (contiguous CPU leaves) against its tensor operations (strided leaves).</summary>
public class DiagEkfRuleTests
{
    [TestCase(ScalarType.Float32), TestCase(ScalarType.Float64)]
    public void TheOnePassRuleEqualsTheTensorOperations(ScalarType dtype)
    {
        var x = randn(new long[] { 16, 5 }, dtype: dtype, generator: new Generator(2));
        var y = randn(new long[] { 16, 3 }, dtype: dtype, generator: new Generator(3));
        PerDatumLogDensity<int> logLikelihood = (p, _) => (x.matmul(p["w"]) - y).square().sum(1) * -0.5;
        var w = randn(new long[] { 5, 3 }, dtype: dtype, generator: new Generator(4));
        var ekf = DiagEkf.Build(logLikelihood, 0.1, transitionSd: 0.05, initSd: 2);
        var contiguous = ekf.Init(ParameterTree.From(("w", w)));
        var strided = ekf.Init(ParameterTree.From(("w", w.t().contiguous().t())));
        Assert.That(strided.Params["w"].is_contiguous() || strided.Sd["w"].is_contiguous(), Is.False);
        for (var step = 0; step < 5; step++)
        {
            ekf.Update(contiguous, 0, inplace: true);
            ekf.Update(strided, 0, inplace: true);
        }
        var tolerance = dtype == ScalarType.Float32 ? 1e-5 : 1e-12;
        TensorAssert.Close(contiguous.Params["w"], strided.Params["w"], tolerance, tolerance, "mean");
        TensorAssert.Finite(contiguous.Params["w"], "mean");
        TensorAssert.Close(contiguous.Sd["w"], strided.Sd["w"], tolerance, tolerance, "sd");
        TensorAssert.Finite(contiguous.Sd["w"], "sd");
        Assert.That(contiguous.Sd["w"].lt(1.9).all().item<bool>(), Is.True, "the filter learned");
    }
}
