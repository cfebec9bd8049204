using Posteriors.Curvature;
using Posteriors.Ekf;
using Posteriors.Ensembles;
using Posteriors.Laplace;
using Posteriors.Optim;
using Posteriors.Sgmcmc;
using Posteriors.Tests.Sgmcmc;
using Posteriors.Trees;
using Posteriors.Vi;
using static TorchSharp.torch;

namespace Posteriors.Tests.Core;

/// <summary>Every update hands the log posterior's auxiliary output of its evaluation back in the state.</summary>
public class AuxTests
{
    private static ParameterTree Start() => ParameterTree.From(("w", tensor(new[] { 0.5, -1.0, 2.0 })));

    /// <summary>log π = −½ |w − 1|², aux = 10 w (the point where it was evaluated, so the test can tell which one).</summary>
    private static readonly LogPosterior<int> WithAux = (p, _) => new LogDensityResult(p["w"].sub(1).square().sum() * -0.5, p["w"] * 10);

    private static readonly PerDatumLogDensity<int> PerDatumWithAux = (p, b) =>
        new LogDensityResult((p["w"].sub(1).square().sum() * -0.5).expand(b), p["w"] * 10);

    private static void AssertAux(IAlgorithmState state, Tensor evaluatedAt, string what)
    {
        Assert.That(state.Aux, Is.Not.Null, what);
        Assert.That(state.Aux!.Same(evaluatedAt.detach() * 10), Is.True, $"{what}: aux {state.Aux!.Str()} vs 10 × {evaluatedAt.Str()}");
    }

    [Test]
    public void SamplersLaplaceEkfAndMapReturnTheAuxOfTheirEvaluation()
    {
        var sghmc = Sghmc.Build(WithAux, 0.1);
        var s = sghmc.Init(Start(), seed: 1);
        Assert.That(s.Aux, Is.Null, "no aux before the first update");
        var before = s.Params["w"].clone();
        s = sghmc.Update(s, 0);
        AssertAux(s, before, "SGHMC (gradient at the old θ)");

        var laplace = DiagFisher.Build(PerDatumWithAux, 1.0);
        AssertAux(laplace.Update(laplace.Init(Start()), 4), Start()["w"], "diagonal Fisher Laplace");
        var ekf = DiagEkf.Build(PerDatumWithAux, 0.1);
        AssertAux(ekf.Update(ekf.Init(Start()), 4), Start()["w"], "diagonal EKF");
        var map = Map.Build(WithAux, Optimizer.Adam(0.1));
        AssertAux(map.Update(map.Init(Start()), 0), Start()["w"], "MAP");
        var torchMap = TorchOptim.Build(WithAux, ps => optim.SGD(ps, 0.1));
        AssertAux(torchMap.Update(torchMap.Init(Start()), 0), Start()["w"], "TorchOptim");
    }

    [Test]
    public void ViStacksTheAuxOfItsSamplesAndEnsemblesThatOfTheirChains()
    {
        var vi = DiagVi.Build(WithAux, Optimizer.Adam(0.01), samples: 3);
        var state = vi.Update(vi.Init(Start(), seed: 2), 0);
        Assert.That(state.Aux!.shape, Is.EqualTo(new long[] { 3, 3 }), "one row per Monte Carlo sample");

        var ensemble = Ensemble.Of(Sgld.Build(WithAux, 0.01));
        var stacked = ParallelChains.Stack(new[] { Start(), Start().Map(t => t + 1) });
        var e = ensemble.Update(ensemble.Init(stacked, seed: 3), 0);
        Assert.That(e.Aux!.Same(stacked["w"] * 10), Is.True, $"chain k's aux in row k: {e.Aux!.Str()}");
    }

    [Test]
    public void AnInPlaceUpdateReplacesTheAuxAndACopyKeepsItsOwn()
    {
        var sgld = Sgld.Build(WithAux, 0.01);
        var first = sgld.Update(sgld.Init(Start(), seed: 4), 0);
        var aux = first.Aux!.clone();
        var second = sgld.Update(first, 0);
        Assert.That(first.Aux!.Same(aux), Is.True, "the copying update left the old state's aux alone");
        Assert.That(second.Aux!.Same(first.Params["w"] * 10), Is.True, "the new state's aux is from its own evaluation");
    }
}
