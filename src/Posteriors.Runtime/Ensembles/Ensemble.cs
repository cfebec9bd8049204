using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ensembles;

/// <summary>
/// K chains of any sampler of docs/ALGORITHMS.md §2 from independent initialisations, each keeping its final state
/// (§2.7). With SGHMC: at T = 0 every member is a momentum-SGD run (a deep ensemble); at T = 1/N every member is,
/// asymptotically in the run length, a posterior sample (the "unbiased deep ensemble"). The two differ in one number.
/// </summary>
public static class Ensemble
{
    /// <summary>A deep ensemble: K momentum-SGD runs (SGHMC at T = 0, zero initial momenta).</summary>
    /// <param name="perMember">The log posterior of one member (plain tensor code, a module bound with
    /// <see cref="ModuleBinding"/>, or a generated model's <c>LogPosterior</c>).</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    public static Ensemble<TBatch> Deep<TBatch>(LogPosterior<TBatch> perMember, Schedule lr, double alpha = 0.01, double sigma = 1.0) =>
        Build(perMember, lr, alpha, sigma, temperature: 0.0);

    /// <summary>The unbiased deep ensemble: the same runs at T = 1/N, so every member samples the posterior.</summary>
    /// <param name="perMember">As for <see cref="Deep{TBatch}"/>.</param>
    /// <param name="datasetSize">N, the number of training data (the log posterior is batch-normalised, docs/ALGORITHMS.md §1).</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="datasetSize"/> is not positive.</exception>
    public static Ensemble<TBatch> Unbiased<TBatch>(LogPosterior<TBatch> perMember, long datasetSize, Schedule lr, double alpha = 0.01,
        double sigma = 1.0) =>
        datasetSize > 0
            ? Build(perMember, lr, alpha, sigma, temperature: 1.0 / datasetSize)
            : throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "The data set size N must be positive.");

    /// <summary>K parallel SGHMC chains at any temperature (constant or schedule).</summary>
    /// <param name="perMember">As for <see cref="Deep{TBatch}"/>.</param>
    /// <param name="lr">SGHMC step size ε.</param>
    /// <param name="alpha">Friction α.</param>
    /// <param name="sigma">Momentum scale σ.</param>
    /// <param name="temperature">Temperature T.</param>
    /// <param name="beta">Gradient-noise correction β.</param>
    /// <param name="momenta">Initial momenta (default zero): a value, random, or a tree shaped like one member or like the stacked tree.</param>
    public static Ensemble<TBatch> Build<TBatch>(LogPosterior<TBatch> perMember, Schedule lr, double alpha, double sigma,
        Schedule temperature, double beta = 0.0, InitialMomenta? momenta = null) =>
        new(Sghmc.Build(perMember, lr, alpha, beta, sigma, temperature, momenta ?? InitialMomenta.Zero));

    /// <summary>
    /// K chains of <paramref name="sampler"/> (built on the log posterior of one member): SGLD, SGHMC, SGNHT, BAOA or
    /// SGLRW, each chain with its own noise stream and, for SGNHT, its own thermostat.
    /// </summary>
    public static Ensemble<TState, TBatch> Of<TState, TBatch>(SgmcmcSampler<TState, TBatch> sampler) where TState : SgmcmcState =>
        new(sampler ?? throw new ArgumentNullException(nameof(sampler)));
}

/// <summary>
/// K chains of one sampler on a stacked state: every tensor field has a leading chain dimension (parameters, momenta,
/// SGNHT's thermostats [K]). An update differentiates and moves chain k on views of the stacked state, one chain after
/// another, with the sampler's own rule and noise from stream k of the state's seed: the same work as K separate chains,
/// with no stacked gradient to assemble. Chain 0 is bit-identical to a single chain with the same seed. See
/// <see cref="Ensemble"/>.
/// </summary>
/// <typeparam name="TState">The sampler's state.</typeparam>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public class Ensemble<TState, TBatch> : ITransform<TState, TBatch> where TState : SgmcmcState
{
    internal Ensemble(SgmcmcSampler<TState, TBatch> sampler) => Sampler = sampler;

    /// <summary>The sampler that moves every chain (built on the log posterior of one member).</summary>
    public SgmcmcSampler<TState, TBatch> Sampler { get; }

    /// <summary>A state from an already stacked tree (leading chain dimension); chain k's random initial values come from stream k of <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">A leaf has no leading chain dimension, or the leaves disagree on K.</exception>
    public TState Init(ParameterTree parameters, long seed = 0)
    {
        var chains = ParallelChains.Count(parameters);
        using var scope = NewDisposeScope();
        var members = new TState[chains];
        try
        {
            for (var k = 0; k < chains; k++) members[k] = Sampler.NewChain(ParallelChains.Member(parameters, k), seed, k);
            return AlgorithmState.Stack(members);
        }
        finally
        {
            foreach (var member in members) member?.Dispose();
        }
    }

    /// <summary>A state from K independent initialisations <paramref name="initialise"/>(k).</summary>
    public TState Init(int members, Func<int, ParameterTree> initialise, long seed = 0)
    {
        var stacked = ParallelChains.Initialise(members, initialise);
        try { return Init(stacked, seed); }
        finally { stacked.DisposeLeaves(); }
    }

    /// <inheritdoc />
    /// <remarks>The state's log posterior is Σₖ log π(θₖ); its auxiliary output is the chains' outputs stacked, when every chain has one.</remarks>
    /// <exception cref="NonFiniteException">A chain's log posterior or gradient is NaN or infinite; the message names the chain.</exception>
    public TState Update(TState state, TBatch batch, bool inplace = false)
    {
        var next = AlgorithmState.Target(state, inplace);
        using var scope = NewDisposeScope();
        var chains = ParallelChains.Count(state.Params);
        var values = new Tensor[chains];
        var auxes = new List<Tensor>(chains);
        for (var k = 0; k < chains; k++)
        {
            using var chainScope = NewDisposeScope();
            // Chain k's gradient at its old position; the other chains' moves never touch its rows.
            var (value, aux, grad) = SgmcmcStep.Gradient(Sampler.LogPosterior, ParallelChains.Member(state.Params, k), state.Step, batch, chain: k);
            Sampler.Move((TState)next.Member(k), grad, state.Step, state.Seed, stream: k);
            values[k] = value.MoveToOuterDisposeScope();
            if (aux is not null) auxes.Add(aux.MoveToOuterDisposeScope());
        }
        return AlgorithmState.Finish(next, stack(values).sum(), auxes.Count == chains ? stack(auxes.ToArray()) : null);
    }

    /// <summary>The members of <paramref name="state"/> (views of its stacked parameters).</summary>
    public static ParameterTree[] Members(TState state) =>
        ParallelChains.Unstack((state ?? throw new ArgumentNullException(nameof(state))).Params);

    /// <summary>Chain <paramref name="k"/> of a stacked state as a state of its own (views sharing the stacked tensors).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="k"/> is not a chain of the state.</exception>
    public static TState Member(TState state, int k)
    {
        ArgumentNullException.ThrowIfNull(state);
        var count = ParallelChains.Count(state.Params);
        if (k < 0 || k >= count) throw new ArgumentOutOfRangeException(nameof(k), k, $"There are {count} chains.");
        return (TState)state.Member(k);
    }
}

/// <summary>K SGHMC chains (<see cref="Ensemble.Deep{TBatch}"/>, <see cref="Ensemble.Unbiased{TBatch}"/>, <see cref="Ensemble.Build{TBatch}"/>).</summary>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public sealed class Ensemble<TBatch> : Ensemble<SghmcState, TBatch>
{
    internal Ensemble(Sghmc<TBatch> sampler) : base(sampler) { }

    /// <summary>The SGHMC transform that moves every chain (built on the log posterior of one member).</summary>
    public new Sghmc<TBatch> Sampler => (Sghmc<TBatch>)base.Sampler;
}
