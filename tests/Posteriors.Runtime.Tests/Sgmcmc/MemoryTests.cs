using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

/// <summary>Long runs must not accumulate native tensors: every temporary dies in the update's dispose scope.</summary>
public class MemoryTests
{
    private static (long Live, long Total) Counts() =>
        (DisposeScopeManager.Statistics.ThreadTotalLiveCount, Tensor.TotalCount);

    private static void AssertFlat(string name, Action step)
    {
        for (var i = 0; i < 20; i++) step();                      // warm-up: generators, cached leaves
        var before = Counts();
        for (var i = 0; i < 500; i++) step();
        var after = Counts();
        // Without any GC: a leak of one tensor per step would show as ≥ 500 here.
        Assert.That(after.Live - before.Live, Is.LessThanOrEqualTo(0), $"{name}: live tensors on this thread grew");
        Assert.That(after.Total - before.Total, Is.LessThanOrEqualTo(0), $"{name}: TorchSharp's tensor count grew");
    }

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.Names))]
    public void InPlaceUpdatesKeepTheTensorCountFlat(string name)
    {
        var target = new GaussianTarget(seed: 1);
        var sampler = SamplerCases.Build(name, target.LogPosterior, momenta: InitialMomenta.Random);
        var state = sampler.Init(ParameterTree.From(("theta", zeros(8, 2, dtype: ScalarType.Float64))), seed: 1);
        AssertFlat(name, () => state = sampler.Update(state, inplace: true));
    }

    [Test]
    public void CopyingUpdatesWhoseOldStatesAreDisposedKeepTheCountFlat()
    {
        var target = new GaussianTarget(seed: 1);
        var sampler = SamplerCases.Build("Sghmc", target.LogPosterior);
        var state = sampler.Init(ParameterTree.From(("theta", zeros(8, 2, dtype: ScalarType.Float64))), seed: 1);
        AssertFlat("copying", () =>
        {
            var next = sampler.Update(state, inplace: false);
            foreach (var t in sampler.Tensors(state)) t.Dispose();
            state = next;
        });
    }

    [Test]
    public void AModuleBoundEnsembleKeepsTheCountFlat()
    {
        var module = nn.Sequential(("fc1", nn.Linear(4, 8)), ("act", nn.ReLU()), ("fc2", nn.Linear(8, 1)));
        var x = randn(16, 4);
        var y = randn(16, 1);
        LogPosterior<Tensor> lp = (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new LogDensityResult(-(((nn.Module<Tensor, Tensor>)module).call(batch) - y).square().mean(), wrt: wrt);
        };
        var ensemble = Ensemble.Unbiased(lp, datasetSize: 16, lr: 0.05, alpha: 1, sigma: 1);
        var template = ParameterTree.FromModule(module);
        var state = ensemble.Init(3, k => template.Map(t => t.detach() + 0.1 * randn_like(t)), seed: 4);
        AssertFlat("ensemble", () => state = ensemble.Update(state, x, inplace: true));
    }
}
