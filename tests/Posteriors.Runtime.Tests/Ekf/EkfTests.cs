using Posteriors.Tests.Sgmcmc;
using Posteriors.Curvature;
using Posteriors.Ekf;
using Posteriors.Serialization;
using Posteriors.Tests.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Ekf;

public class EkfTests
{
    private static readonly Tensor Target = tensor(new[] { 1.5, -2.0, 0.5 });

    /// <summary>log N(yᵢ; θ, I) per observation yᵢ (a row of the batch).</summary>
    private static readonly PerDatumLogDensity<Tensor> Gaussian = (p, y) => (y - p["theta"]).square().sum(1) * -0.5;

    /// <summary>Batches of 5 noisy observations yᵢ ~ N(target, I), from a fixed seed.</summary>
    private static IEnumerable<Tensor> Observations(int steps)
    {
        var g = new Generator(17);
        for (var i = 0; i < steps; i++) yield return Target + randn(new long[] { 5, 3 }, dtype: float64, generator: g);
    }

    private static ParameterTree Start() => ParameterTree.From(("theta", zeros(3, dtype: float64)));

    [Test]
    public void BothFiltersConvergeToTheTargetMeanAndTheDenseCovarianceStaysPositiveDefinite()
    {
        // docs/ALGORITHMS.md §7: a 3-D Gaussian log-likelihood log N(target; θ, I), lr 0.1, 1,000 steps. The problem is noise-free,
        // so the filters must reach the target itself; the dense precision must stay positive definite at every step
        // (subtracting lr·F, as the Python reference does, breaks this).
        var diag = Posteriors.Ekf.DiagEkf.Build(Gaussian, lr: 0.1);
        var dense = Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1);
        var d = diag.Init(Start());
        var f = dense.Init(Start());
        var y = Target.unsqueeze(0);
        for (var step = 0; step < 1000; step++)
        {
            d = diag.Update(d, y, inplace: true);
            f = dense.Update(f, y, inplace: true);
            if (step % 10 == 0) Assert.That(linalg.cholesky_ex(f.Covariance()).info.item<int>(), Is.EqualTo(0), $"Σ positive definite at step {f.Step}");
        }
        Assert.That(TestModels.MaxDiff(d.Params["theta"], Target), Is.LessThan(0.1), "diagonal");
        Assert.That(TestModels.MaxDiff(f.Params["theta"], Target), Is.LessThan(0.1), "dense");
        Assert.That(TestModels.MaxDiff(f.Covariance(), f.Covariance().t()), Is.EqualTo(0), "symmetric");
        Assert.That(linalg.eigvalsh(f.Covariance()).min().item<double>(), Is.GreaterThan(0));
        Assert.That(d.Sd["theta"].max().item<double>(), Is.LessThan(1.0), "the precision grows with data");
    }

    [Test]
    public void DenseFilterMatchesTheDiagonalFilterOnADiagonalProblem()
    {
        // Each datum observes one coordinate, so every per-sample gradient is one-hot and F is exactly diagonal.
        PerDatumLogDensity<(Tensor Index, Tensor Y)> oneCoordinate = (p, b) => (b.Y - p["theta"].index_select(0, b.Index)).square() * -0.5;
        var g = new Generator(8);
        var batches = Enumerable.Range(0, 50).Select(_ => (randint(0, 3, new long[] { 4 }, generator: g), randn(new long[] { 4 }, dtype: float64, generator: g) + 1)).ToList();
        var diag = Posteriors.Ekf.DiagEkf.Build(oneCoordinate, lr: Schedule.Of(t => 0.5 / (1 + 0.1 * t)), transitionSd: 0.1, initSd: 2);
        var dense = Posteriors.Ekf.DenseEkf.Build(oneCoordinate, lr: Schedule.Of(t => 0.5 / (1 + 0.1 * t)), transitionSd: 0.1, initSd: 2);
        var d = diag.Run(diag.Init(Start()), batches);
        var f = dense.Run(dense.Init(Start()), batches);
        Assert.That(TestModels.MaxDiff(d.Params["theta"], f.Params["theta"]), Is.LessThan(1e-10));
        Assert.That(TestModels.MaxDiff(d.Sd["theta"].square(), f.Covariance().diagonal()), Is.LessThan(1e-10));
        Assert.That(TestModels.MaxDiff(f.Covariance(), torch.diag(f.Covariance().diagonal())), Is.LessThan(1e-12));
    }

    [Test]
    public void TheDenseStateKeepsThePrecisionWhoseInverseIsTheCovariance()
    {
        var dense = Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1, initSd: 1.5);
        var state = dense.Run(dense.Init(Start()), Observations(3));
        TensorAssert.Close(state.Precision.mm(state.Covariance()), eye(3, dtype: float64), rtol: 0, atol: 1e-10, what: "P Σ");
        // The precision only grows: P − P₀ = Σₜ lr Fₜ is positive semi-definite.
        var growth = linalg.eigvalsh(state.Precision - eye(3, dtype: float64) / 2.25);
        Assert.That(growth.min().item<double>(), Is.GreaterThan(-1e-12), $"eigenvalues of P − P₀: {growth.Str()}");
    }

    [Test]
    public void SamplesReproduceTheFilteredGaussian()
    {
        var dense = Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1, initSd: 1.5);
        var state = dense.Run(dense.Init(Start()), Observations(3));
        var draws = dense.Sample(state, 10_000, seed: 1)["theta"];
        // Variances ≤ 2.25: mean SE ≤ 0.015, covariance SE ≤ 2.25·sqrt(2/10⁴) ≈ 0.03.
        Assert.That(TestModels.MaxDiff(draws.mean(new long[] { 0 }), state.Params["theta"]), Is.LessThan(0.1));
        Assert.That(TestModels.MaxDiff(cov(draws.t()), state.Covariance()), Is.LessThan(0.1));
        var diag = Posteriors.Ekf.DiagEkf.Build(Gaussian, lr: 0.1, initSd: 1.5);
        var diagState = diag.Run(diag.Init(Start()), Observations(3));
        var diagDraws = diag.Sample(diagState, 10_000, seed: 1)["theta"];
        Assert.That(TestModels.MaxDiff(diagDraws.std(0), diagState.Sd["theta"]), Is.LessThan(0.1));
    }

    [Test]
    public void InPlaceCopyingAndSaveLoadAreBitIdentical()
    {
        var batches = Observations(6).ToList();
        var diag = Posteriors.Ekf.DiagEkf.Build(Gaussian, lr: 0.1, transitionSd: 0.01);
        var dense = Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1, transitionSd: 0.01);
        DiagEkfState a = diag.Init(Start()), b = diag.Init(Start());
        DenseEkfState c = dense.Init(Start()), e = dense.Init(Start());
        foreach (var y in batches.Take(3))
        {
            a = diag.Update(a, y, inplace: true);
            var before = b.Params.Clone();
            var next = diag.Update(b, y);
            Assert.That(TestModels.Same(b.Params["theta"], before["theta"]), Is.True, "copying left the old state untouched");
            b = next;
            c = dense.Update(c, y, inplace: true);
            e = dense.Update(e, y);
        }
        TensorAssert.Same(a.Params["theta"], b.Params["theta"], "diagonal mean");
        TensorAssert.Same(a.Sd["theta"], b.Sd["theta"], "diagonal sd");
        TensorAssert.Same(c.Precision, e.Precision, "dense precision");
        TensorAssert.Same(c.Params["theta"], e.Params["theta"], "dense mean");

        var path = Path.Combine(Path.GetTempPath(), $"ekf-{Guid.NewGuid():N}.pst");
        try
        {
            StateFile.Save(path, c);
            var resumed = dense.Run(StateFile.Load<DenseEkfState>(path), batches.Skip(3));
            var uninterrupted = dense.Run(c, batches.Skip(3));
            TensorAssert.Same(resumed.Covariance(), uninterrupted.Covariance());
            StateFile.Save(path, a);
            var diagResumed = diag.Run(StateFile.Load<DiagEkfState>(path), batches.Skip(3));
            TensorAssert.Same(diagResumed.Sd["theta"], diag.Run(a, batches.Skip(3)).Sd["theta"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void BadHyperparametersGiveClearExceptions()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Posteriors.Ekf.DiagEkf.Build(Gaussian, lr: 0.0))!.ParamName, Is.EqualTo("lr"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1, transitionSd: -1))!.ParamName, Is.EqualTo("transitionSd"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Posteriors.Ekf.DenseEkf.Build(Gaussian, lr: 0.1, initSd: 0))!.ParamName, Is.EqualTo("initSd"));
        var scheduled = Posteriors.Ekf.DiagEkf.Build(Gaussian, lr: Schedule.Of(t => -1));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => scheduled.Update(scheduled.Init(Start()), Observations(1).First()))!.Message, Does.Contain("'lr'").And.Contain("step 0"));
        var nan = Posteriors.Ekf.DiagEkf.Build<Tensor>((p, y) => (y - p["theta"]).sum(1) * double.NaN, lr: 0.1);
        Assert.Throws<NonFiniteException>(() => nan.Update(nan.Init(Start()), Observations(1).First()));
    }
}
