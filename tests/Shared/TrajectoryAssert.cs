using NUnit.Framework;
using Posteriors.Sgmcmc;
using Posteriors.Trees;

namespace Posteriors.Testing;

/// <summary>Sampler trajectories that must agree, with a failure that names the leaf and says what differed.</summary>
internal static class TrajectoryAssert
{
    /// <summary>
    /// SGHMC (α = 1, the same start and seed) on two log posteriors with the same gradient — one differentiated by
    /// autograd, one handing part of its gradient over in closed form — follows the same trajectory: every leaf within
    /// rtol 1e-6, atol 1e-9 after <paramref name="steps"/> steps, and finite.
    /// </summary>
    public static void SameSghmcTrajectory<TBatch>(LogPosterior<TBatch> autograd, LogPosterior<TBatch> closedForm, ParameterTree start,
        TBatch batch, double lr, double temperature, int steps)
    {
        var a = Sghmc.Build(autograd, lr, alpha: 1, temperature: temperature);
        var b = Sghmc.Build(closedForm, lr, alpha: 1, temperature: temperature);
        SghmcState sa = a.Init(start, seed: 3), sb = b.Init(start, seed: 3);
        for (var step = 0; step < steps; step++)
        {
            a.Update(sa, batch, inplace: true);
            b.Update(sb, batch, inplace: true);
        }
        for (var i = 0; i < start.Count; i++)
        {
            TensorAssert.Finite(sb.Params.Leaves[i], $"trajectory of {start.Names[i]}");
            TensorAssert.Close(sb.Params.Leaves[i], sa.Params.Leaves[i], rtol: 1e-6, atol: 1e-9, $"trajectory of {start.Names[i]}");
        }
    }
}
