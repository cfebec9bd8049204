using Posteriors.Optim;
using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Tests.Curvature;
using Posteriors.Vi;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Vi;

public class DenseViTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void ConvergesToACorrelatedGaussianTarget(bool stickingTheLanding)
    {
        // docs/ALGORITHMS.md §7: 1,000 Adam steps at 1e-2 with 2 samples; means and L Lᵀ within 0.5.
        var (logPosterior, mean, covariance, init) = ViTestTargets.Dense();
        var vi = DenseVi.Build(logPosterior, Optimizer.Adam(lr: 1e-2), samples: 2, stickingTheLanding: stickingTheLanding);
        var state = vi.Run(vi.Init(init, seed: 6), Enumerable.Repeat(0, 1000));
        Assert.That(TestModels.MaxDiff(state.Params.Flatten(), mean), Is.LessThan(0.5));
        Assert.That(TestModels.MaxDiff(DenseVi.Covariance(state), covariance), Is.LessThan(0.5));
    }

    [Test]
    public void NelboIsZeroWhenQIsTheTarget()
    {
        var (logPosterior, mean, covariance, init) = ViTestTargets.Dense();
        var l = LowerTriangular.Pack(linalg.cholesky(covariance));
        var nelbo = DenseVi.Nelbo(logPosterior, init.Unflatten(mean), l, 0, samples: 1000, seed: 1).item<double>();
        Assert.That(Math.Abs(nelbo), Is.LessThan(1e-4));
        var identity = LowerTriangular.Pack(eye(3, dtype: float64));
        Assert.That(DenseVi.Nelbo(logPosterior, init.Unflatten(mean), identity, 0, samples: 1000, seed: 1).item<double>(), Is.GreaterThan(0.01));
    }

    [Test]
    public void SampleReproducesMeanAndCovarianceAndShapes()
    {
        var (logPosterior, mean, covariance, init) = ViTestTargets.Dense();
        var vi = DenseVi.Build(logPosterior, Optimizer.Sgd(1e-3));
        var state = vi.Init(init.Unflatten(mean));
        using (no_grad()) state.Cholesky.copy_(LowerTriangular.Pack(linalg.cholesky(covariance)));
        var draws = vi.Sample(state, 10_000, seed: 2);
        Assert.That(draws["w"].shape, Is.EqualTo(new long[] { 10_000, 1, 2 }));
        var flat = cat(new[] { draws["w"].reshape(10_000, -1), draws["b"].reshape(10_000, -1) }, 1);
        // Entries of Σ are O(1) (largest variance ≈ 3): covariance SE ≈ 3·sqrt(2/10⁴) ≈ 0.04, mean SE ≈ 0.02.
        Assert.That(TestModels.MaxDiff(flat.mean(new long[] { 0 }), mean), Is.LessThan(0.1));
        Assert.That(TestModels.MaxDiff(cov(flat.t()), covariance), Is.LessThan(0.1));
    }

    [Test]
    public void InPlaceCopyingAndSaveLoadAreBitIdentical()
    {
        var (logPosterior, _, _, init) = ViTestTargets.Dense();
        var vi = DenseVi.Build(logPosterior, Optimizer.Adam(lr: 1e-2), samples: 2);
        var a = vi.Init(init, seed: 5);
        var b = vi.Init(init, seed: 5);
        for (var i = 0; i < 4; i++)
        {
            a = vi.Update(a, 0, inplace: true);
            b = vi.Update(b, 0);
        }
        TensorAssert.Same(a.Params.Flatten(), b.Params.Flatten());
        TensorAssert.Same(a.Cholesky, b.Cholesky);

        var path = Path.Combine(Path.GetTempPath(), $"densevi-{Guid.NewGuid():N}.pst");
        try
        {
            StateFile.Save(path, a);
            var resumed = vi.Run(StateFile.Load<DenseViState>(path), Enumerable.Repeat(0, 3));
            var uninterrupted = vi.Run(a, Enumerable.Repeat(0, 3));
            TensorAssert.Same(resumed.Cholesky, uninterrupted.Cholesky);
            TensorAssert.Same(resumed.Params.Flatten(), uninterrupted.Params.Flatten());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void BadInputsGiveClearExceptions()
    {
        var (logPosterior, mean, _, init) = ViTestTargets.Dense();
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => DenseVi.Build(logPosterior, Optimizer.Adam(), samples: -2))!.ParamName, Is.EqualTo("samples"));
        Assert.That(Assert.Throws<ArgumentException>(() => DenseVi.Nelbo(logPosterior, init, zeros(5, dtype: float64), 0))!.Message, Does.Contain("length 6"));
    }
}
