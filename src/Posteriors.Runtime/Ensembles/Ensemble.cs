using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ensembles;

/// <summary>
/// Deep ensembles as parallel SGHMC (docs/ALGORITHMS.md §2.7): K chains from independent initialisations, each keeping its
/// final state. At T = 0 every member is a momentum-SGD run (a deep ensemble); at T = 1/N every member is,
/// asymptotically in the run length, a posterior sample (the "unbiased deep ensemble"). The two differ in one number.
/// </summary>
public static class Ensemble
{
    /// <summary>A deep ensemble: K momentum-SGD runs (SGHMC at T = 0, zero initial momenta).</summary>
    /// <param name="perMember">The log posterior of one member (plain tensor code, a module bound with
    /// <see cref="ModuleBinding"/>, or a generated model's <c>LogPosterior</c>); it is lifted with
    /// <see cref="ParallelChains.Sum{TBatch}"/> unless <paramref name="stacked"/> says it already sums over chains.</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    /// <param name="stacked">Whether <paramref name="perMember"/> already takes stacked parameters and returns Σₖ log π(θₖ).</param>
    public static Ensemble<TBatch> Deep<TBatch>(LogPosterior<TBatch> perMember, Schedule lr, double alpha = 0.01, double sigma = 1.0,
        bool stacked = false) =>
        Build(perMember, lr, alpha, sigma, temperature: 0.0, stacked: stacked);

    /// <summary>The unbiased deep ensemble: the same runs at T = 1/N, so every member samples the posterior.</summary>
    /// <param name="perMember">As for <see cref="Deep{TBatch}"/>.</param>
    /// <param name="datasetSize">N, the number of training data (the log posterior is batch-normalised, docs/ALGORITHMS.md §1).</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    /// <param name="stacked">As for <see cref="Deep{TBatch}"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="datasetSize"/> is not positive.</exception>
    public static Ensemble<TBatch> Unbiased<TBatch>(LogPosterior<TBatch> perMember, long datasetSize, Schedule lr, double alpha = 0.01,
        double sigma = 1.0, bool stacked = false) =>
        datasetSize > 0
            ? Build(perMember, lr, alpha, sigma, temperature: 1.0 / datasetSize, stacked: stacked)
            : throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "The data set size N must be positive.");

    /// <summary>K parallel SGHMC chains at any temperature (constant or schedule).</summary>
    /// <param name="perMember">As for <see cref="Deep{TBatch}"/>.</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    /// <param name="temperature">Temperature T.</param>
    /// <param name="beta">Gradient-noise correction β.</param>
    /// <param name="momenta">Initial momenta of the stacked tree (default zero).</param>
    /// <param name="stacked">As for <see cref="Deep{TBatch}"/>.</param>
    public static Ensemble<TBatch> Build<TBatch>(LogPosterior<TBatch> perMember, Schedule lr, double alpha, double sigma,
        Schedule temperature, double beta = 0.0, InitialMomenta? momenta = null, bool stacked = false)
    {
        ArgumentNullException.ThrowIfNull(perMember);
        var logPosterior = stacked ? perMember : ParallelChains.Sum(perMember);
        return new Ensemble<TBatch>(Sghmc.Build(logPosterior, lr, alpha, beta, sigma, temperature, momenta ?? InitialMomenta.Zero),
            stacked ? null : perMember);
    }
}

/// <summary>
/// K SGHMC chains on a stacked tree. See <see cref="Ensemble"/>. A stacked log posterior (Σₖ log π(θₖ) in one
/// evaluation) advances all chains with one update and one noise draw per leaf. A per-member log posterior advances the
/// chains one after another on views of the stacked tree: the same work as K separate chains, with no stacked
/// gradient to assemble, and chain k's noise drawn from its own stream k of the seed, so every chain is reproducible on
/// its own and independent of the others.
/// </summary>
public sealed class Ensemble<TBatch> : ITransform<SghmcState, TBatch>
{
    private readonly LogPosterior<TBatch>? _perMember;

    internal Ensemble(Sghmc<TBatch> sampler, LogPosterior<TBatch>? perMember)
    {
        Sampler = sampler;
        _perMember = perMember;
    }

    /// <summary>
    /// The SGHMC transform over the stacked tree (with a per-member log posterior, lifted by
    /// <see cref="ParallelChains.Sum{TBatch}"/>; its noise is one draw per stacked leaf, so its trajectories differ from
    /// <see cref="Update"/>'s chain-by-chain streams).
    /// </summary>
    public Sghmc<TBatch> Sampler { get; }

    /// <summary>A state from an already stacked tree (leading chain dimension), seed 0.</summary>
    public SghmcState Init(ParameterTree stacked) => Init(stacked, seed: 0);

    /// <summary>A state from an already stacked tree whose noise comes from the stream of <paramref name="seed"/>.</summary>
    public SghmcState Init(ParameterTree stacked, long seed)
    {
        ParallelChains.Count(stacked);
        return Sampler.Init(stacked, seed);
    }

    /// <summary>A state from K independent initialisations <paramref name="initialise"/>(k).</summary>
    public SghmcState Init(int members, Func<int, ParameterTree> initialise, long seed = 0)
    {
        var stacked = ParallelChains.Initialise(members, initialise);
        try { return Sampler.Init(stacked, seed); }
        finally { stacked.DisposeLeaves(); }
    }

    /// <inheritdoc />
    /// <exception cref="NonFiniteException">A chain's log posterior or gradient is NaN or infinite; the message names the chain.</exception>
    public SghmcState Update(SghmcState state, TBatch batch, bool inplace = false)
    {
        if (_perMember is null) return Sampler.Update(state, batch, inplace);
        var next = SgmcmcStep.Target(state, inplace, s => s.Copy());
        using var scope = NewDisposeScope();
        var chains = ParallelChains.Count(state.Params);
        var values = new Tensor[chains];
        for (var k = 0; k < chains; k++)
        {
            using var chainScope = NewDisposeScope();
            // Chain k's gradient at its old position; the other chains' moves never touch its rows.
            var (value, _, grad) = SgmcmcStep.Gradient(_perMember, ParallelChains.Member(state.Params, k), state.Step, batch, chain: k);
            Sampler.Move(ParallelChains.Member(next.Params, k), ParallelChains.Member(next.Momenta, k), grad, state.Step, state.Seed, stream: k);
            values[k] = value.MoveToOuterDisposeScope();
        }
        return SgmcmcStep.Finish(next, stack(values).sum());
    }

    /// <summary>The members of <paramref name="state"/> (views of its stacked parameters).</summary>
    public static ParameterTree[] Members(SghmcState state) =>
        ParallelChains.Unstack((state ?? throw new ArgumentNullException(nameof(state))).Params);
}
