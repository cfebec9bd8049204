using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using Posteriors.Tests.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Ensembles;

/// <summary>Every sampler runs as an ensemble: chain k has its own stream (and SGNHT its own thermostat), chain 0 is the single chain.</summary>
public class EnsembleSamplerTests
{
    private static readonly GaussianTarget Target = new(seed: 5);
    private const int Chains = 3;

    private static ParameterTree Start() => ParameterTree.From(("theta", tensor(new double[,] { { 1.0, -2.0 }, { 0.5, 3.0 } })));

    public static IEnumerable<TestCaseData> Samplers()
    {
        yield return new TestCaseData((Action)(() => Check(Sgld.Build(Target.LogPosterior, 1e-2)))).SetName("Sgld");
        yield return new TestCaseData((Action)(() => Check(Sghmc.Build(Target.LogPosterior, 0.1, alpha: 1)))).SetName("Sghmc");
        yield return new TestCaseData((Action)(() => Check(Sgnht.Build(Target.LogPosterior, 0.1, alpha: 1)))).SetName("Sgnht");
        yield return new TestCaseData((Action)(() => Check(Baoa.Build(Target.LogPosterior, 0.1, alpha: 1)))).SetName("Baoa");
        yield return new TestCaseData((Action)(() => Check(Sglrw.Build(Target.LogPosterior, 1e-2)))).SetName("Sglrw");
    }

    [TestCaseSource(nameof(Samplers))]
    public void ChainZeroIsTheSingleChainAndOtherChainsHaveTheirOwnStreams(Action check) => check();

    private static IEnumerable<(string Name, Tensor Value)> Tensors(AlgorithmState state) =>
        state.Fields.Fields.Where(f => f.Key != AlgorithmState.LogPosteriorField).SelectMany(f => f.Value switch
        {
            Tensor t => new[] { (f.Key, t) },
            ParameterTree tree => tree.Select(l => ($"{f.Key}['{l.Key}']", l.Value)),
            _ => Array.Empty<(string, Tensor)>(),
        });

    private static void Check<TState>(SgmcmcSampler<TState, object?> sampler) where TState : SgmcmcState
    {
        var ensemble = Ensemble.Of(sampler);
        // Every chain starts at the same point: after a few steps they differ only through their noise streams.
        var stacked = ParallelChains.Stack(Enumerable.Repeat(Start(), Chains).ToArray());
        var inPlace = ensemble.Init(stacked, seed: 5);
        var copying = ensemble.Init(stacked, seed: 5);
        var single = sampler.Init(Start(), seed: 5);
        for (var t = 0; t < 6; t++)
        {
            inPlace = ensemble.Update(inPlace, null, inplace: true);
            copying = ensemble.Update(copying, null);
            single = sampler.Update(single, null, inplace: true);
        }
        foreach (var ((name, a), (_, b)) in Tensors(inPlace).Zip(Tensors(copying)))
            Assert.That(a.Same(b), Is.True, $"in place and copying differ in {name}");
        var chain0 = Ensemble<TState, object?>.Member(inPlace, 0);
        var chain1 = Ensemble<TState, object?>.Member(inPlace, 1);
        foreach (var ((name, a), (_, b)) in Tensors(chain0).Zip(Tensors(single)))
            Assert.That(a.Same(b), Is.True, $"chain 0 differs from the single chain in {name}: {a.Str()} vs {b.Str()}");
        Assert.That(chain1.Params["theta"].Same(chain0.Params["theta"]), Is.False, "chains 0 and 1 drew the same noise");
        Assert.That(double.IsFinite(inPlace.LogPosterior.item<double>()), Is.True, "the state's log posterior (the chains' sum) is recorded");
        if (inPlace is SgnhtState sgnht)
        {
            Assert.That(sgnht.Xi.shape, Is.EqualTo(new long[] { Chains }), "one thermostat per chain");
            Assert.That(sgnht.Xi[0].item<double>(), Is.Not.EqualTo(sgnht.Xi[1].item<double>()), "each chain's thermostat follows its own momenta");
        }
    }

    [Test]
    public void RandomInitialMomentaComeFromEachChainsStream()
    {
        var sampler = Sghmc.Build(Target.LogPosterior, 0.1, momenta: InitialMomenta.Random);
        var state = Ensemble.Of(sampler).Init(ParallelChains.Stack(Enumerable.Repeat(Start(), Chains).ToArray()), seed: 9);
        Assert.That(state.Momenta["theta"][0].Same(sampler.Init(Start(), seed: 9).Momenta["theta"]), Is.True, "chain 0 starts like the single chain");
        Assert.That(state.Momenta["theta"][1].Same(state.Momenta["theta"][0]), Is.False, "chain 1 has momenta of its own");
    }
}
