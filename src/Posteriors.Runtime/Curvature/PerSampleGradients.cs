using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// Per-sample gradients gᵢ = ∇θ vᵢ of a per-datum function v (one value per datum), which TorchSharp cannot
/// vectorise (it has no vmap).
/// </summary>
/// <remarks>
/// <para>
/// <b>Fast path (nn.Linear layers).</b> When the function evaluates through the given <c>module</c> (bound with
/// <see cref="ModuleBinding.Bind"/>), forward hooks record every <see cref="Linear"/> layer's input a and output z.
/// One backward pass of Σᵢ vᵢ gives ∂vᵢ/∂zᵢ for all i at once (datum i reaches only row i of z), and the per-sample
/// weight gradient is the outer product (∂vᵢ/∂zᵢ) aᵢᵀ (summed over any middle dimensions and repeated calls).
/// A term that depends on the weights directly rather than through z (the prior / N) is the same for every datum,
/// so it is recovered as (total gradient − Σᵢ outer products) / B. For Σᵢ gᵢ² (diagonal Fisher) no per-sample
/// tensor is formed at all: it is (∂v/∂z)²ᵀ a² plus the prior cross terms, one matrix product per layer.
/// </para>
/// <para>
/// <b>General path.</b> Every other parameter gets one backward pass per datum through the single recorded graph
/// (B passes, one forward). It is exact for any model whose datum i depends only on row i of the batch.
/// </para>
/// </remarks>
public static class PerSampleGradients
{
    /// <summary>
    /// Per-sample gradients of <paramref name="perDatum"/>: a tree over the selected parameters whose leaves have a
    /// leading dimension B (gᵢ of a [out, in] weight has shape [B, out, in]).
    /// </summary>
    /// <param name="perDatum">The per-datum function; its values [B] are differentiated one by one.</param>
    /// <param name="parameters">Where to differentiate.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="subset">Names of the parameters to differentiate (null: all); the others stay fixed.</param>
    /// <param name="module">The module the function evaluates through, if any: its nn.Linear layers take the fast path.</param>
    public static ParameterTree Compute<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        return Factor(perDatum, parameters, batch, subset, module).Materialize().MoveToOuterDisposeScope();
    }

    /// <summary>Σᵢ gᵢ ∘ gᵢ over the batch (the diagonal empirical Fisher increment), shaped like the selected parameters.</summary>
    /// <inheritdoc cref="Compute{TBatch}" path="/param"/>
    public static ParameterTree SumOfSquares<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        return Factor(perDatum, parameters, batch, subset, module).SumOfSquares().MoveToOuterDisposeScope();
    }

    /// <summary>Per-sample gradients flattened to a [B, P] matrix (P elements of the selected parameters, in the tree's order).</summary>
    /// <inheritdoc cref="Compute{TBatch}" path="/param"/>
    public static Tensor Matrix<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset = null, nn.Module? module = null)
    {
        using var scope = NewDisposeScope();
        var tree = Factor(perDatum, parameters, batch, subset, module).Materialize();
        var b = tree.Leaves[0].shape[0];
        return cat(tree.Leaves.Select(t => t.reshape(b, -1)).ToArray(), 1).MoveToOuterDisposeScope();
    }

    internal static Factors Factor<TBatch>(PerDatumLogDensity<TBatch> perDatum, ParameterTree parameters, TBatch batch,
        IEnumerable<string>? subset, nn.Module? module)
    {
        var names = PerDatum.ResolveSubset(parameters, subset);
        var wanted = new HashSet<string>(names, StringComparer.Ordinal);
        var calls = new Dictionary<string, List<(Tensor Input, Tensor Output)>>(StringComparer.Ordinal);
        var removers = new List<Action>();
        if (module is not null)
        {
            var layers = module.named_modules().Select(m => (Prefix: m.name + ".", m.module)).ToList();
            layers.Add(("", module));
            foreach (var (prefix, m) in layers)
            {
                if (m is not Linear linear || !wanted.Contains(prefix + "weight")) continue;
                var list = new List<(Tensor, Tensor)>();
                calls[prefix] = list;
                var remover = linear.register_forward_hook((_, input, output) =>
                {
                    // New handles to the same native tensors: containers such as Sequential dispose their intermediates.
                    list.Add((input.alias(), output.alias()));
                    return output;
                });
                removers.Add(remover.remove);
            }
        }

        Tensor values;
        Tensor? aux;
        ParameterTree wrt;
        try
        {
            (values, aux, wrt) = PerDatum.EvaluateWithAux(perDatum, parameters, batch);
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        var b = values.shape[0];
        if (b == 0) throw new ArgumentException("The batch is empty: per-sample gradients need at least one datum.", nameof(batch));

        // Which selected leaves the outer-product rule covers: the layer ran, and every z has the batch as its first dimension.
        var covered = new Dictionary<string, (string Prefix, bool IsBias)>(StringComparer.Ordinal);
        foreach (var (prefix, list) in calls)
        {
            if (list.Count == 0 || list.Any(c => c.Output.dim() < 2 || c.Output.shape[0] != b || !c.Output.requires_grad)) continue;
            covered[prefix + "weight"] = (prefix, false);
            if (wanted.Contains(prefix + "bias") && wrt.Contains(prefix + "bias")) covered[prefix + "bias"] = (prefix, true);
        }

        var result = new Factors(names, b) { Values = values.detach(), Aux = aux?.detach() };
        using var _ = enable_grad();
        var total = values.sum();
        var others = names.Where(n => !covered.ContainsKey(n)).ToList();

        if (covered.Count > 0)
        {
            var outputs = calls.Where(c => covered.ContainsKey(c.Key + "weight")).SelectMany(c => c.Value.Select(v => v.Output)).ToList();
            var coveredNames = covered.Keys.ToList();
            var inputs = outputs.Concat(coveredNames.Select(n => wrt[n])).ToArray();
            var grads = autograd.grad(new[] { total }, inputs, retain_graph: others.Count > 0, allow_unused: true);
            var k = 0;
            var gz = new Dictionary<string, List<(Tensor A, Tensor G)>>(StringComparer.Ordinal);
            foreach (var (prefix, list) in calls)
            {
                if (!covered.ContainsKey(prefix + "weight")) continue;
                var pairs = new List<(Tensor, Tensor)>();
                foreach (var (input, output) in list)
                {
                    var g = grads[k++];
                    var outDim = output.shape[^1];
                    var gm = g is null || g.IsInvalid ? zeros_like(output) : g.detach();
                    pairs.Add((input.detach().reshape(b, -1, input.shape[^1]), gm.reshape(b, -1, outDim)));
                }
                gz[prefix] = pairs;
            }
            foreach (var name in coveredNames)
            {
                var g = grads[k++];
                var totalGrad = g is null || g.IsInvalid ? zeros_like(wrt[name]) : g.detach();
                var (prefix, isBias) = covered[name];
                result.SetLinear(name, gz[prefix], totalGrad, isBias);
            }
        }

        if (others.Count > 0)
        {
            var leaves = others.Select(n => wrt[n]).ToArray();
            var rows = others.Select(_ => new List<Tensor>((int)b)).ToArray();
            for (long i = 0; i < b; i++)
            {
                var grads = autograd.grad(new[] { values[i] }, leaves, retain_graph: true, allow_unused: true);
                for (var j = 0; j < leaves.Length; j++)
                    rows[j].Add(grads[j] is null || grads[j].IsInvalid ? zeros_like(leaves[j]) : grads[j].detach());
            }
            for (var j = 0; j < leaves.Length; j++) result.SetDense(others[j], stack(rows[j]));
        }
        return result;
    }

    /// <summary>Per-sample gradients held as outer-product factors where possible.</summary>
    internal sealed class Factors
    {
        private readonly IReadOnlyList<string> _names;
        private readonly long _b;
        private readonly Dictionary<string, Tensor> _dense = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (List<(Tensor A, Tensor G)> Pairs, Tensor Sum, Tensor Shared, bool IsBias)> _linear = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Tensor> _totals = new(StringComparer.Ordinal);

        public Factors(IReadOnlyList<string> names, long b)
        {
            _names = names;
            _b = b;
        }

        /// <summary>The leaves served by the nn.Linear outer-product path (the rest took one backward pass per datum).</summary>
        public IReadOnlyCollection<string> FastPathLeaves => _linear.Keys;

        /// <summary>The per-datum values vᵢ (detached).</summary>
        public Tensor Values { get; init; } = null!;

        /// <summary>The function's auxiliary output (detached), or <c>null</c>.</summary>
        public Tensor? Aux { get; init; }

        public void SetDense(string name, Tensor perSample) => _dense[name] = perSample;

        public void SetLinear(string name, List<(Tensor A, Tensor G)> pairs, Tensor totalGradient, bool isBias)
        {
            // Σᵢ of the outer products; what remains of the total gradient is the part every datum shares (prior / N).
            var sum = isBias ? pairs.Select(p => p.G.sum(new long[] { 0, 1 })).Aggregate((x, y) => x + y)
                             : pairs.Select(p => p.G.reshape(-1, p.G.shape[2]).t().mm(p.A.reshape(-1, p.A.shape[2]))).Aggregate((x, y) => x + y);
            _linear[name] = (pairs, sum, totalGradient.sub(sum).div_(_b), isBias);
            _totals[name] = totalGradient;
        }

        private Tensor LinearPerSample(List<(Tensor A, Tensor G)> pairs, Tensor shared, bool isBias)
        {
            var per = isBias ? pairs.Select(p => p.G.sum(1)).Aggregate((x, y) => x + y)
                             : pairs.Select(p => p.G.transpose(1, 2).bmm(p.A)).Aggregate((x, y) => x + y);
            return per + shared.unsqueeze(0);
        }

        public ParameterTree Materialize() =>
            new(_names.Select(n => new KeyValuePair<string, Tensor>(n,
                _dense.TryGetValue(n, out var d) ? d : LinearPerSample(_linear[n].Pairs, _linear[n].Shared, _linear[n].IsBias))));

        /// <summary>Σᵢ gᵢ, the gradient of Σᵢ vᵢ.</summary>
        public ParameterTree Sum() =>
            new(_names.Select(n => new KeyValuePair<string, Tensor>(n, _dense.TryGetValue(n, out var d) ? d.sum(dim: 0) : _totals[n])));

        public ParameterTree SumOfSquares() =>
            new(_names.Select(n => new KeyValuePair<string, Tensor>(n, _dense.TryGetValue(n, out var d) ? d.square().sum(dim: 0) : LinearSumOfSquares(n))));

        private Tensor LinearSumOfSquares(string name)
        {
            var (pairs, sum, e, isBias) = _linear[name];
            if (pairs.Count != 1 || pairs[0].A.shape[1] != 1) return LinearPerSample(pairs, e, isBias).square().sum(dim: 0);
            // Σᵢ (gᵢ aᵢᵀ + e)² = (g²)ᵀ a² + e ∘ (2 Σᵢ gᵢ aᵢᵀ + B e), with no [B, out, in] tensor; Σᵢ gᵢ aᵢᵀ is already known.
            var a = pairs[0].A.squeeze(1);
            var g = pairs[0].G.squeeze(1);
            var squares = isBias ? g.square().sum(dim: 0) : g.square().t().mm(a.square());
            return sum.mul(2).add_(e, alpha: _b).mul_(e).add_(squares);
        }
    }
}
