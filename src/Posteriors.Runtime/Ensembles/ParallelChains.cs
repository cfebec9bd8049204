using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ensembles;

/// <summary>
/// K chains advanced at once. TorchSharp has no vmap, so the representation is a <b>leading chain dimension</b> in
/// every leaf: a stacked tree whose leaf <c>w</c> has shape [K, …w's shape]. <see cref="Ensemble.Of{TState, TBatch}"/>
/// steps the chains of any sampler one by one on views of such a tree. SGLD, SGHMC, BAOA and SGLRW are also
/// elementwise, so a sampler given a log posterior over the stacked tree, Σₖ log π(θₖ) (whose gradient with respect to
/// row k is ∇ log π(θₖ)), advances all K chains with one set of tensor operations and one noise draw per leaf; SGNHT
/// would then share one thermostat between the chains. Write that sum directly (batched matrix products) or lift a
/// single-chain log posterior with <see cref="Sum{TBatch}"/> (K model evaluations per step).
/// </summary>
public static class ParallelChains
{
    /// <summary>Stacks K trees of the same structure into one tree with a leading chain dimension (copies).</summary>
    /// <exception cref="ArgumentException">No members, or they differ in names or shapes.</exception>
    public static ParameterTree Stack(IReadOnlyList<ParameterTree> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("At least one member is needed.", nameof(members));
        for (var k = 1; k < members.Count; k++) members[0].EnsureSameStructure(members[k], $"{nameof(members)}[{k}]");
        return members[0].Map((name, _) => stack(members.Select(m => m[name].detach()).ToArray()));
    }

    /// <summary>K members created by <paramref name="initialise"/>(k), stacked (independent initialisations).</summary>
    public static ParameterTree Initialise(int chains, Func<int, ParameterTree> initialise)
    {
        ArgumentNullException.ThrowIfNull(initialise);
        if (chains <= 0) throw new ArgumentOutOfRangeException(nameof(chains), chains, "The number of chains must be positive.");
        using var scope = NewDisposeScope();
        return Stack(Enumerable.Range(0, chains).Select(initialise).ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>The number of chains K of a stacked tree.</summary>
    /// <exception cref="ArgumentException">A leaf has no leading dimension or the leaves disagree on K.</exception>
    public static int Count(ParameterTree stacked)
    {
        ArgumentNullException.ThrowIfNull(stacked);
        if (stacked.Count == 0) throw new ArgumentException("The tree has no leaves.", nameof(stacked));
        long k = -1;
        foreach (var (name, leaf) in stacked)
        {
            if (leaf.dim() == 0)
                throw new ArgumentException($"Parameter '{name}' is a scalar; a stacked tree needs a leading chain dimension.", nameof(stacked));
            if (k >= 0 && leaf.shape[0] != k)
                throw new ArgumentException($"Parameter '{name}' has {leaf.shape[0]} chains but the first leaf has {k}.", nameof(stacked));
            k = leaf.shape[0];
        }
        return checked((int)k);
    }

    /// <summary>Chain <paramref name="k"/> of a stacked tree, as views sharing its storage.</summary>
    public static ParameterTree Member(ParameterTree stacked, int k)
    {
        var count = Count(stacked);
        if (k < 0 || k >= count) throw new ArgumentOutOfRangeException(nameof(k), k, $"There are {count} chains.");
        return stacked.Map(t => t.select(0, k));
    }

    /// <summary>Every chain of a stacked tree, as views.</summary>
    public static ParameterTree[] Unstack(ParameterTree stacked) =>
        Enumerable.Range(0, Count(stacked)).Select(k => Member(stacked, k)).ToArray();

    /// <summary>A [K, D] matrix whose row k is chain k flattened in the tree's order (for moments and diagnostics).</summary>
    public static Tensor Rows(ParameterTree stacked)
    {
        var k = Count(stacked);
        return cat(stacked.Leaves.Select(t => t.reshape(k, -1)).ToArray(), 1);
    }

    /// <summary>
    /// Lifts a single-chain log posterior to stacked parameters: Σₖ log π(θₖ; batch), every chain on the same batch.
    /// Each chain is evaluated and differentiated on its own (K forward and K backward passes, as K sequential chains
    /// would be; a single backward through views of the stacked leaves would materialise a full-size zero gradient per
    /// chain), and the per-chain gradients, written into one stacked buffer, are returned through a linear surrogate
    /// whose gradient is exactly that buffer. This works for plain tensor code and for a module bound with
    /// <see cref="ModuleBinding"/> (reporting <see cref="LogDensityResult.Wrt"/>): one module serves every chain in turn.
    /// The auxiliary output is the chains' outputs stacked, when all have one. A chain's
    /// <see cref="LogDensityResult.AnalyticGradient"/> (a generated model's <c>FirstOrderLogPosterior</c>) is added to its
    /// autograd gradient, so the stacked result needs first-order algorithms only as the per-chain one does.
    /// </summary>
    public static LogPosterior<TBatch> Sum<TBatch>(LogPosterior<TBatch> perChain)
    {
        ArgumentNullException.ThrowIfNull(perChain);
        return (stacked, batch) =>
        {
            var chains = Count(stacked);
            var gradient = stacked.Leaves.Select(t => zeros_like(t)).ToArray();
            var aux = new List<Tensor>(chains);
            var values = new Tensor[chains];
            for (var k = 0; k < chains; k++)
            {
                using var scope = NewDisposeScope();
                var member = stacked.Map(t => t.detach().select(0, k).requires_grad_(true));
                var result = perChain(member, batch);
                var value = result.Value.reshape(Array.Empty<long>());
                var wrt = result.Wrt ?? member;
                member.EnsureSameStructure(wrt, nameof(LogDensityResult.Wrt));
                if (value.requires_grad)
                {
                    var grads = autograd.grad(new[] { value }, wrt.Leaves.ToArray(), allow_unused: true);
                    using (no_grad())
                        for (var i = 0; i < grads.Count; i++)
                            if (grads[i] is not null && !grads[i].IsInvalid) gradient[i].select(0, k).copy_(grads[i]);
                }
                if (result.AnalyticGradient is { } analytic)
                {
                    // The closed-form terms join the chain's row of the buffer, so the surrogate carries them too.
                    member.EnsureSameStructure(analytic, nameof(LogDensityResult.AnalyticGradient));
                    using (no_grad())
                        for (var i = 0; i < gradient.Length; i++) gradient[i].select(0, k).add_(analytic.Leaves[i]);
                }
                if (result.Aux is not null) aux.Add(result.Aux.detach().MoveToOuterDisposeScope());
                values[k] = value.detach().clone().MoveToOuterDisposeScope();
            }
            Tensor? surrogate = null;
            for (var i = 0; i < gradient.Length; i++)
            {
                var s = (stacked.Leaves[i] * gradient[i]).sum();
                surrogate = surrogate is null ? s : surrogate + s;
            }
            // value Σₖ log π(θₖ) exactly (x − x = 0), gradient exactly the per-chain gradients.
            var total = stack(values).sum() + (surrogate! - surrogate!.detach());
            var stackedAux = aux.Count == chains ? stack(aux.ToArray()) : null;
            return new LogDensityResult(total, stackedAux);
        };
    }
}
