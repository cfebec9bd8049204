using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Models;
using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Tests.Chains;

/// <summary>The single-process reference every chain grain must match bit for bit, and the comparison.</summary>
internal static class OneProcess
{
    /// <summary>The single-process ensemble of the run's sampler over the same batches (stacked state).</summary>
    public static SgmcmcState Run(RunSpec spec)
    {
        using var model = new ModelCatalog().Build(spec.Model);
        var sampler = MemberSampler.Build(model.LogPosterior, spec.Sampler);
        var state = sampler.InitEnsemble(spec.Members, k => model.InitialParameters(spec.Seed, k), spec.Seed);
        for (long step = 0; step < spec.Steps; step++)
        {
            using var scope = NewDisposeScope();
            sampler.StepEnsemble(state, model.Batch(spec.Seed, step));
        }
        return state;
    }

    /// <summary>Member k equals row k of <paramref name="stacked"/> in every field: parameters, momenta, thermostat, step.</summary>
    public static void AssertBitIdentical(SgmcmcState stacked, IReadOnlyList<SgmcmcState> members)
    {
        for (var k = 0; k < members.Count; k++)
        {
            var member = members[k];
            Assert.That(member.GetType(), Is.EqualTo(stacked.GetType()), $"member {k} state kind");
            Assert.That(member.Step, Is.EqualTo(stacked.Step), $"member {k} step");
            AssertTree(ParallelChains.Member(stacked.Params, k), member.Params, $"member {k} parameter");
            if (stacked is MomentumState m)
                AssertTree(ParallelChains.Member(m.Momenta, k), ((MomentumState)member).Momenta, $"member {k} momentum");
            if (stacked is SgnhtState s)
                Assert.That(Bits(((SgnhtState)member).Xi), Is.EqualTo(Bits(s.Xi[k])), $"member {k} thermostat");
        }
    }

    private static void AssertTree(Trees.ParameterTree expected, Trees.ParameterTree actual, string what)
    {
        for (var i = 0; i < expected.Count; i++)
            Assert.That(Bits(actual.Leaves[i]), Is.EqualTo(Bits(expected.Leaves[i])), $"{what} {expected.Names[i]}");
    }

    /// <summary>The raw bytes: equal bytes are equal numbers, signs of zeros and NaN payloads included.</summary>
    private static byte[] Bits(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }
}
