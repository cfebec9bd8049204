using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// Laplace approximation with a Kronecker-factored (KFAC) GGN precision for the Linear and Conv2d layers of a module
/// (docs/ALGORITHMS.md §4a). One forward pass records every layer's input; backward passes from the outputs, one per
/// column of the output Hessian's factor (or one with a label sampled from the model), record the gradient at every
/// layer's output; each layer's factors are the second moments of the two. Only the likelihood enters the factors;
/// the prior precision δ is kept per layer and added at use, so it can be tuned afterwards.
/// </summary>
public static class Kfac
{
    /// <summary>Builds the transform.</summary>
    /// <param name="model">The forward pass (through <paramref name="module"/>, bound with <see cref="ModuleBinding.Bind"/>) and its outer likelihood.</param>
    /// <param name="module">The module the forward evaluates; its Linear and Conv2d layers are found by name.</param>
    /// <param name="priorPrecision">The prior precision δ of every layer (positive).</param>
    /// <param name="layers">Module names of the layers to cover (null: every Linear and Conv2d layer with a trainable weight).</param>
    /// <param name="sampled">Draw one label per datum from the model instead of summing every column of the output Hessian's factor: one backward pass per batch instead of K, the same curvature in expectation.</param>
    /// <param name="convFactors">How the factors of a convolution treat its output positions (<see cref="KfacConvFactors.Expand"/>, the default, or the cheaper <see cref="KfacConvFactors.Reduce"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="priorPrecision"/> is not positive, or <paramref name="convFactors"/> is not a defined value.</exception>
    /// <exception cref="ArgumentException">A layer name is not a Linear or Conv2d layer of the module, or a convolution is grouped or not zero-padded.</exception>
    public static Kfac<TBatch> Build<TBatch>(IForwardModel<TBatch> model, nn.Module module, double priorPrecision = 1,
        IEnumerable<string>? layers = null, bool sampled = false, KfacConvFactors convFactors = KfacConvFactors.Expand)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!(priorPrecision > 0) || double.IsInfinity(priorPrecision))
            throw new ArgumentOutOfRangeException(nameof(priorPrecision), priorPrecision, "The prior precision must be positive and finite.");
        return new Kfac<TBatch>(model, module, priorPrecision, FindLayers(module, layers), sampled, Check.Defined(convFactors, nameof(convFactors)));
    }

    /// <summary>Draws from the approximation; see <see cref="KfacLaplaceState.Sample"/>.</summary>
    public static ParameterTree Sample(KfacLaplaceState state, long count, long seed = 0, double temperature = 1) =>
        (state ?? throw new ArgumentNullException(nameof(state))).Sample(count, seed, temperature);

    /// <summary>
    /// The linearised (GLM) predictive's mean [B, K] and covariance [B, K, K] of the outputs under the KFAC posterior:
    /// Jᵢ (G ⊗ A + δ I)⁻¹ Jᵢᵀ · T summed over layers, computed in the factors' eigenbases (the Jacobian of output k with
    /// respect to a layer's weight matrix is Σ_positions g aᵀ; no [P, P] matrix is formed).
    /// </summary>
    /// <param name="state">The fitted state.</param>
    /// <param name="forward">Outputs for the inputs at given parameters, evaluated through <paramref name="module"/>.</param>
    /// <param name="module">The module the state was fitted through.</param>
    /// <param name="temperature">T (1: the Bayesian posterior).</param>
    public static (Tensor Mean, Tensor Covariance) LinearisedPredictive(KfacLaplaceState state, Func<ParameterTree, ModelOutput> forward,
        nn.Module module, double temperature = 1)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(forward);
        Check.NonNegative(temperature, nameof(temperature));
        var eigen = state.Eigen();
        using var scope = NewDisposeScope();
        var layers = state.Layers;
        var (outputs, recorded) = Record(module, layers, () => forward(state.Params).Outputs);
        var f = OutputLikelihood.AsMatrix(outputs);
        var (b, k) = (f.shape[0], f.shape[1]);
        var covariance = zeros(new[] { b, k, k }, dtype: f.dtype, device: f.device);
        using (enable_grad())
        {
            var rotated = layers.ToDictionary(l => l.Key, _ => new Tensor[k]);
            var patches = RotatedPatches(recorded, layers, eigen);
            for (long c = 0; c < k; c++)
            {
                var grads = OutputGradients(recorded, layers, f.select(1, c).sum(), retain: c < k - 1);
                foreach (var layer in layers)
                    rotated[layer.Key][c] = RotatedJacobians(grads[layer.Key], patches[layer.Key], eigen[layer.Key].QG);
            }
            foreach (var layer in layers)
            {
                var j = stack(rotated[layer.Key], 1).flatten(2);                                          // [B, K, out·in']
                var inverse = (state.CurvatureEigenvalues(layer) + state.PriorPrecision[layer.Key]).reciprocal().flatten();
                covariance += (j * inverse).bmm(j.transpose(1, 2)) * temperature;
            }
        }
        return (f.detach().MoveToOuterDisposeScope(), covariance.detach().MoveToOuterDisposeScope());
    }

    /// <summary>Per layer, the input patches with the bias's 1 rotated into A's eigenbasis: Q_Aᵀ a for every datum and position, [B, L, in'].</summary>
    internal static Dictionary<string, Tensor> RotatedPatches(Dictionary<string, Recorded> recorded, IReadOnlyList<KfacLayer> layers,
        IReadOnlyDictionary<string, (Tensor LambdaA, Tensor QA, Tensor LambdaG, Tensor QG)> eigen) =>
        layers.ToDictionary(l => l.Key, l => WithBias(recorded[l.Key].Patches(), l).matmul(eigen[l.Key].QA));

    /// <summary>
    /// Every datum's gradient of a layer's weight matrix, Σ_l g_l a_lᵀ, in the factors' eigenbasis, Q_Gᵀ (Σ_l g_l a_lᵀ) Q_A,
    /// [B, out, in'], from the output gradients [B, L, out] and the rotated patches (<see cref="RotatedPatches"/>).
    /// It equals Σ_l (Q_Gᵀ g_l)(Q_Aᵀ a_l)ᵀ: rotating the patches and gradients first costs L·(in'² + out²) per datum
    /// instead of out·in'² (fc1 of the study's CNN: in' = 3,137).
    /// </summary>
    internal static Tensor RotatedJacobians(Tensor grads, Tensor rotatedPatches, Tensor qg) =>
        einsum("blo,blj->boj", grads.matmul(qg), rotatedPatches);

    /// <summary>The Linear/Conv2d layers of <paramref name="module"/> named in <paramref name="names"/> (all when null), in module order.</summary>
    internal static IReadOnlyList<KfacLayer> FindLayers(nn.Module module, IEnumerable<string>? names)
    {
        var all = Modules(module).Where(m => m.Module is Linear or Conv2d).ToList();
        var wanted = names?.ToList();
        if (wanted is not null)
        {
            var unknown = wanted.Where(n => all.All(m => m.Name != n)).ToList();
            if (unknown.Count > 0)
                throw new ArgumentException(
                    $"{string.Join(", ", unknown.Select(n => $"'{n}'"))} is not a Linear or Conv2d layer of the module; it has: {string.Join(", ", all.Select(m => m.Name))}.", nameof(names));
            if (wanted.Count == 0) throw new ArgumentException("The layer list is empty; pass null for every layer.", nameof(names));
        }
        var layers = new List<KfacLayer>();
        foreach (var (name, m) in all)
        {
            if (wanted is not null && !wanted.Contains(name)) continue;
            if (m is Conv2d conv)
            {
                if (conv.groups != 1) throw new ArgumentException($"Conv2d layer '{name}' has {conv.groups} groups; KFAC supports ungrouped convolutions.", nameof(names));
                if (conv.padding_mode != PaddingModes.Zeros) throw new ArgumentException($"Conv2d layer '{name}' pads with {conv.padding_mode}; KFAC supports zero padding.", nameof(names));
                layers.Add(new KfacLayer(name, true, conv.bias is not null));
            }
            else
            {
                var linear = (Linear)m;
                if (wanted is null && !linear.weight!.requires_grad) continue;
                layers.Add(new KfacLayer(name, false, linear.bias is not null));
            }
        }
        if (layers.Count == 0) throw new ArgumentException("The module has no Linear or Conv2d layer to cover.", nameof(module));
        return layers;
    }

    private static IEnumerable<(string Name, nn.Module Module)> Modules(nn.Module module) =>
        new[] { ("", module) }.Concat(module.named_modules().Select(m => (m.name, m.module)));

    /// <summary>What a layer saw in one forward pass: its inputs and raw outputs, one per call of the layer.</summary>
    internal sealed class Recorded(nn.Module module, KfacLayer layer, IReadOnlyList<Tensor> inputs, List<Tensor> outputs, long b)
    {
        /// <summary>The layer's raw outputs, one per call.</summary>
        public List<Tensor> Outputs => outputs;

        /// <summary>The number of positions per datum over all calls (a convolution's output pixels; 1 for a Linear layer on vectors).</summary>
        public long Positions => outputs.Sum(o => o.numel() / (b * o.shape[layer.IsConvolution ? 1 : ^1]));

        /// <summary>The input patches [B, L, in] (without the bias's 1): a convolution's unfolded input, a Linear layer's input.</summary>
        public Tensor Patches()
        {
            var patches = inputs.Select(input => module is Conv2d conv
                ? nn.functional.unfold(input, (conv.kernel_size[0], conv.kernel_size[1]), (conv.dilation[0], conv.dilation[1]),
                    Padding(conv, layer), (conv.stride[0], conv.stride[1])).transpose(1, 2)      // [B, L, C·kh·kw]
                : input.reshape(b, -1, input.shape[^1])).ToArray();
            return patches.Length == 1 ? patches[0] : cat(patches, 1);
        }

        /// <summary>
        /// A convolution's input patch summed over its output positions [B, C·kh·kw], without unfolding: entry (c, u, v)
        /// is the sum of the zero-padded input over the output grid shifted by the kernel offset (u, v).
        /// </summary>
        public Tensor PatchSums()
        {
            var conv = (Conv2d)module;
            var (kh, kw) = (conv.kernel_size[0], conv.kernel_size[1]);
            var (dh, dw) = (conv.dilation[0], conv.dilation[1]);
            var (sh, sw) = (conv.stride[0], conv.stride[1]);
            var padding = Padding(conv, layer);
            Tensor? sum = null;
            for (var i = 0; i < inputs.Count; i++)
            {
                var x = nn.functional.pad(inputs[i], new[] { padding.Item2, padding.Item2, padding.Item1, padding.Item1 });
                var (ho, wo) = (outputs[i].shape[2], outputs[i].shape[3]);
                // Rows first (kh sums over Ho rows), then columns (kh·kw sums over Wo columns).
                var rows = Enumerable.Range(0, (int)kh).Select(u => x.slice(2, u * dh, u * dh + sh * (ho - 1) + 1, sh).sum(2)).ToArray();   // [B, C, Wp] each
                var cells = rows.SelectMany(r => Enumerable.Range(0, (int)kw).Select(v => r.slice(2, v * dw, v * dw + sw * (wo - 1) + 1, sw).sum(2))).ToArray();
                var s = stack(cells, 2);                                                                  // [B, C, kh·kw]
                sum = sum is null ? s : sum + s;
            }
            return sum!.flatten(1);
        }

        /// <summary>A convolution's input patch averaged over its output positions [B, C·kh·kw] (<see cref="PatchSums"/> / <see cref="Positions"/>).</summary>
        public Tensor PatchMeans() => PatchSums() / Positions;

        /// <summary>
        /// Σ over data and output positions of a aᵀ [C·kh·kw, C·kh·kw] for a convolution with stride and dilation 1 (a its
        /// unfolded patch, no bias), from channel products of the input with itself shifted, without unfolding; null where
        /// that form does not apply (another stride or dilation, an input that is not [B, C, H, W]) or takes more
        /// multiply-adds than the upper half of the patch product.
        /// </summary>
        /// <remarks>
        /// The block of kernel offsets k and k' = k + d is Σ over the input positions q in k's window of x(q) x(q + d)ᵀ
        /// (x zero outside the input; the window is the output grid shifted by k − padding, clipped to the input), so it
        /// depends on k only through the window, which differs from the whole input only by a few edge rows and columns
        /// when the padding is small. Per shift d (those with d ≥ 0 in row-major order; the others are transposes) this
        /// sums x(q) x(q + d)ᵀ over each input row ([H] products of C × W·B × C) and, for the edge columns some window
        /// drops, over each position of them ([H] products of C × B × C); a window's block is its rows' sums less its
        /// dropped columns'. The study's CNN's conv2 (3 × 3, padding 1, 32 channels on 14 × 14): 13 shifts of 196 + 28
        /// positions' C² products per image, about 3.0M multiply-adds where the upper half of the patch product takes 8.1M.
        /// </remarks>
        public Tensor? ShiftMoments()
        {
            var conv = (Conv2d)module;
            if (conv.stride.Any(s => s != 1) || conv.dilation.Any(d => d != 1) || inputs.Any(x => x.dim() != 4)) return null;
            var (kh, kw) = (conv.kernel_size[0], conv.kernel_size[1]);
            var (ph, pw) = Padding(conv, layer);
            // The shifts d = (dy, dx) with d ≥ 0 in row-major order: the blocks (k, k + d) on and above the diagonal.
            var shifts = new List<(long Dy, long Dx)>();
            for (var dy = 0L; dy < kh; dy++)
                for (var dx = dy == 0 ? 0 : 1 - kw; dx < kw; dx++) shifts.Add((dy, dx));
            var geometry = inputs.Select((x, i) =>
            {
                var (h, w) = (x.shape[2], x.shape[3]);
                var (ho, wo) = (outputs[i].shape[2], outputs[i].shape[3]);
                var rows = Window(kh, ph, ho, h);
                var columns = Window(kw, pw, wo, w);
                // Columns outside some window: their products are kept per position, to be taken off that window's rows.
                var edges = Enumerable.Range(0, (int)w).Where(q => columns.Any(cw => q < cw.Start || q >= cw.End)).Select(q => (long)q).ToArray();
                return (Rows: rows, Columns: columns, Edges: edges);
            }).ToArray();
            // Multiply-adds per datum and channel pair: the shifts' products against the upper half of the patch product.
            // The shifts lose where the output grid is small against the kernel (3 × 3 without padding on 6 × 5: 702 against 486).
            var shiftCost = inputs.Select((x, i) => (double)shifts.Count * x.shape[2] * (x.shape[3] + geometry[i].Edges.Length)).Sum();
            var patchCost = outputs.Sum(o => (double)o.shape[2] * o.shape[3] * (kh * kw) * (kh * kw) / 2);
            if (shiftCost > patchCost) return null;
            Tensor? total = null;
            for (var i = 0; i < inputs.Count; i++)
            {
                var x = inputs[i];
                var (c, h, w) = (x.shape[1], x.shape[2], x.shape[3]);
                var (ho, wo) = (outputs[i].shape[2], outputs[i].shape[3]);
                var (rows, columns, edges) = geometry[i];
                // Position-major [H + kh − 1, W + 2(kw − 1), B, C], zero below and beside the input: a row of positions is
                // one contiguous [W·B, C] matrix and its shifted partner another, so every product below is of views.
                var buffer = zeros(new[] { h + kh - 1, w + 2 * (kw - 1), x.shape[0], c }, dtype: x.dtype, device: x.device);
                buffer.narrow(0, 0, h).narrow(1, kw - 1, w).copy_(x.permute(2, 3, 0, 1));
                Tensor View(long dy, long dx, long column, long width) => buffer.narrow(0, dy, h).narrow(1, kw - 1 + column + dx, width).flatten(1, 2);
                var perShift = shifts.Select(d =>
                {
                    var sums = new List<Tensor> { View(0, 0, 0, w).transpose(1, 2).bmm(View(d.Dy, d.Dx, 0, w)) };            // [H, C, C]
                    sums.AddRange(edges.Select(q => View(0, 0, q, 1).transpose(1, 2).bmm(View(d.Dy, d.Dx, q, 1))));
                    return stack(sums);                                                                                             // [1 + E, H, C, C]
                }).ToArray();
                var all = stack(perShift);                                                                                          // [D, 1 + E, H, C, C]
                var byRows = stack(rows.Select(r => all.narrow(2, r.Start, r.End - r.Start).sum(2)).ToArray(), 2);                  // [D, 1 + E, kh, C, C]
                var weights = new double[kw * (1 + edges.Length)];
                for (var v = 0; v < kw; v++)
                {
                    weights[v * (1 + edges.Length)] = 1;
                    for (var e = 0; e < edges.Length; e++)
                        if (edges[e] < columns[v].Start || edges[e] >= columns[v].End) weights[v * (1 + edges.Length) + 1 + e] = -1;
                }
                var dropped = tensor(weights, new[] { kw, 1 + (long)edges.Length }, dtype: x.dtype, device: x.device);
                var blocks = einsum("deuij,ve->duvij", byRows, dropped).flatten(0, 2);                                              // [D·kh·kw, C, C]: (d, k)
                // Block (k, k'): (k' − k, k) when k' − k is one of the shifts, else the transpose of (k − k', k').
                var index = new long[kh * kw * kh * kw];
                var n = 0;
                for (var k = 0L; k < kh * kw; k++)
                    for (var k2 = 0L; k2 < kh * kw; k2++)
                    {
                        var (dy, dx) = (k2 / kw - k / kw, k2 % kw - k % kw);
                        var forward = shifts.IndexOf((dy, dx));
                        index[n++] = forward >= 0 ? forward * kh * kw + k : (shifts.Count + shifts.IndexOf((-dy, -dx))) * kh * kw + k2;
                    }
                var gathered = cat(new[] { blocks, blocks.transpose(1, 2) }).index_select(0, tensor(index, device: x.device));
                // (u, v, u', v', c, c') → A's order (c, u, v) × (c', u', v').
                var moments = gathered.reshape(kh, kw, kh, kw, c, c).permute(4, 0, 1, 5, 2, 3).reshape(c * kh * kw, c * kh * kw);
                total = total is null ? moments : total + moments;
            }
            return total;
        }

        // The input rows (or columns) that kernel offset u's patch entries visit over the output grid: q = o + u − padding
        // for o in [0, outputs), clipped to the input.
        private static (long Start, long End)[] Window(long kernel, long padding, long outputs, long size) =>
            Enumerable.Range(0, (int)kernel).Select(u =>
            {
                var start = Math.Clamp(u - padding, 0, size);
                return (start, Math.Max(start, Math.Clamp(u - padding + outputs, 0, size)));
            }).ToArray();
    }

    /// <summary>Runs <paramref name="forward"/> with hooks on the layers and returns its outputs and what each layer saw.</summary>
    internal static (Tensor Outputs, Dictionary<string, Recorded> Layers) Record(nn.Module module, IReadOnlyList<KfacLayer> layers, Func<Tensor> forward)
    {
        var byName = Modules(module).ToDictionary(m => m.Name, m => m.Module);
        var calls = new Dictionary<string, List<(Tensor Input, Tensor Output)>>();
        var removers = new List<Action>();
        Tensor outputs;
        try
        {
            foreach (var layer in layers)
            {
                if (!byName.TryGetValue(layer.Name, out var m) || m is not nn.Module<Tensor, Tensor> hooked)
                    throw new ArgumentException($"The module has no layer '{layer.Name}'.", nameof(module));
                var list = new List<(Tensor, Tensor)>();
                calls[layer.Key] = list;
                // New handles to the same native tensors: containers such as Sequential dispose their intermediates.
                var handle = hooked.register_forward_hook((_, input, output) => { list.Add((input.alias(), output.alias())); return output; });
                removers.Add(handle.remove);
            }
            using (enable_grad()) outputs = forward();
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        var b = OutputLikelihood.AsMatrix(outputs).shape[0];
        var recorded = new Dictionary<string, Recorded>();
        foreach (var layer in layers)
        {
            var list = calls[layer.Key];
            if (list.Count == 0) throw new InvalidOperationException($"Layer '{layer.Key}' did not run in the forward pass: the forward must evaluate through the module.");
            recorded[layer.Key] = new Recorded(byName[layer.Name], layer, list.Select(call => call.Input.detach()).ToList(), list.Select(c => c.Output).ToList(), b);
        }
        return (outputs, recorded);
    }

    /// <summary>The patches [B, L, in] with the bias's 1 appended when the layer has a bias.</summary>
    internal static Tensor WithBias(Tensor a, KfacLayer layer) =>
        layer.HasBias ? cat(new[] { a, ones(a.shape[0], a.shape[1], 1, dtype: a.dtype, device: a.device) }, 2) : a;

    private static (long, long) Padding(Conv2d conv, KfacLayer layer)
    {
        var padding = conv.padding ?? SamePadding(conv, layer);
        return (padding[0], padding[1]);
    }

    private static long[] SamePadding(Conv2d conv, KfacLayer layer)
    {
        var total = conv.dilation.Zip(conv.kernel_size, (d, k) => d * (k - 1)).ToArray();
        if (total.Any(t => t % 2 != 0))
            throw new ArgumentException($"Conv2d layer '{layer.Key}' pads 'same' unevenly; KFAC supports symmetric padding.");
        return total.Select(t => t / 2).ToArray();
    }

    /// <summary>The gradient of <paramref name="scalar"/> at every layer's outputs, as [B, L, out] per layer.</summary>
    internal static Dictionary<string, Tensor> OutputGradients(Dictionary<string, Recorded> recorded, IReadOnlyList<KfacLayer> layers, Tensor scalar, bool retain)
    {
        var outputs = layers.SelectMany(l => recorded[l.Key].Outputs).ToArray();
        var grads = autograd.grad(new[] { scalar }, outputs, retain_graph: retain, allow_unused: true);
        var result = new Dictionary<string, Tensor>();
        var i = 0;
        foreach (var layer in layers)
        {
            var parts = new List<Tensor>();
            foreach (var output in recorded[layer.Key].Outputs)
            {
                var g = grads[i++];
                g = g is null || g.IsInvalid ? zeros_like(output) : g.detach();
                // Conv2d outputs are [B, out, H, W]: positions are the pixels; Linear outputs [B, ..., out].
                parts.Add(layer.IsConvolution ? g.flatten(2).transpose(1, 2) : g.reshape(g.shape[0], -1, g.shape[^1]));
            }
            result[layer.Key] = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 1);
        }
        return result;
    }
}

/// <summary>The KFAC Laplace transform. See <see cref="Kfac"/>.</summary>
public sealed class Kfac<TBatch> : ITransform<KfacLaplaceState, TBatch>
{
    private readonly IForwardModel<TBatch> _model;
    private readonly nn.Module _module;
    private readonly double _priorPrecision;
    private readonly IReadOnlyList<KfacLayer> _layers;
    private readonly bool _sampled;
    private readonly KfacConvFactors _convFactors;

    internal Kfac(IForwardModel<TBatch> model, nn.Module module, double priorPrecision, IReadOnlyList<KfacLayer> layers, bool sampled,
        KfacConvFactors convFactors)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _module = module;
        _priorPrecision = priorPrecision;
        _layers = layers;
        _sampled = sampled;
        _convFactors = convFactors;
    }

    /// <summary>The layers the approximation covers.</summary>
    public IReadOnlyList<KfacLayer> Layers => _layers;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">A layer's weight or bias is not in <paramref name="parameters"/>.</exception>
    public KfacLaplaceState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var layer in _layers)
            foreach (var name in layer.HasBias ? new[] { layer.Weight, layer.Bias } : new[] { layer.Weight })
                if (!parameters.Contains(name))
                    throw new ArgumentException($"Layer '{layer.Key}' needs parameter '{name}', which the tree lacks; it has: {string.Join(", ", parameters.Names)}.", nameof(parameters));
        using var scope = NewDisposeScope();
        var state = KfacLaplaceState.New(parameters, _layers, _sampled, _convFactors, _priorPrecision, seed);
        state.Fields.Set("factor_a", state.FactorASum.DetachFromDisposeScope());
        state.Fields.Set("factor_g", state.FactorG.DetachFromDisposeScope());
        state.Fields.Set("prior_precision", state.PriorPrecision.DetachFromDisposeScope());
        state.Fields.Set("log_likelihood", state.LogLikelihoodSum.DetachFromDisposeScope());
        return state;
    }

    /// <summary>
    /// Adds the batch's Kronecker factors (A: Σᵢ mean over positions of a aᵀ; G: Σᵢ Σ_c Σ_positions g gᵀ; a convolution
    /// with <see cref="KfacConvFactors.Reduce"/>: A: Σᵢ ā āᵀ with ā the patch's mean over positions, G: Σᵢ Σ_c ḡ ḡᵀ with
    /// ḡ the output gradient's sum over positions).
    /// </summary>
    /// <exception cref="ArgumentException">The state was fitted with other convolution factors.</exception>
    /// <exception cref="InvalidOperationException">The state's eigenvalues are corrected (<see cref="UpdateEigenvalueCorrection"/>): new batches would change the eigenbases the corrections were measured in.</exception>
    public KfacLaplaceState Update(KfacLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod("Kfac", state.Method);
        if (state.ConvFactors != _convFactors)
            throw new ArgumentException($"The state was fitted with {state.ConvFactors} convolution factors, this transform adds {_convFactors} ones.", nameof(state));
        if (state.IsCorrected)
            throw new InvalidOperationException(
                $"The state's eigenvalues are corrected over {state.CorrectionCount} data in the eigenbases of its current factors; adding a batch to the factors " +
                "changes those bases and would leave the corrections stale. Fit the factors first and correct afterwards, or call ClearEigenvalueCorrection before adding batches.");
        using var scope = NewDisposeScope();
        var (outputs, recorded) = Kfac.Record(_module, _layers, () =>
        {
            var output = _model.Forward(state.Params, batch);
            return output.Outputs;
        });
        var f = OutputLikelihood.AsMatrix(outputs);
        var b = f.shape[0];
        Tensor logLikelihood;
        using (no_grad()) logLikelihood = _model.Likelihood.LogProb(f.detach(), _model.Targets(batch)).detach();
        var columns = Columns(f.detach(), state, state.Step);   // [B, K, C]
        var incrementG = _layers.ToDictionary(l => l.Key, l => zeros_like(state.FactorG[l.Key]));
        var c = columns.shape[2];
        using (enable_grad())
        {
            for (long j = 0; j < c; j++)
            {
                var grads = Kfac.OutputGradients(recorded, _layers, (f * columns.select(2, j)).sum(), retain: j < c - 1);
                foreach (var layer in _layers)
                {
                    var g = grads[layer.Key];                                                   // [B, L, out]
                    if (Reduced(layer))
                        incrementG[layer.Key].addmm_(g.sum(1).t(), g.sum(1));
                    else if (layer.IsConvolution)
                        // Per datum and summed: a convolution's gradients are [B, out, L] in memory, and one product over
                        // all B·L positions would first copy them to [B·L, out] (conv1 of the study's CNN: 100,352 × 32),
                        // which took about as long as the products.
                        incrementG[layer.Key].add_(g.transpose(1, 2).bmm(g).sum(new long[] { 0 }));
                    else
                    {
                        var m = g.reshape(-1, g.shape[2]);
                        incrementG[layer.Key].addmm_(m.t(), m);
                    }
                }
            }
        }
        var value = logLikelihood.mean();
        NonFiniteException.ThrowIfNotFinite(state.Step, value, new ParameterTree(incrementG.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value))));
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad())
        {
            foreach (var layer in _layers)
            {
                var r = recorded[layer.Key];
                if (Reduced(layer))
                    next.AddInputMoments(layer, r.PatchMeans().t(), 1);
                else if (layer.IsConvolution && r.ShiftMoments() is { } moments)
                    next.AddInputMoments(layer, moments, r.PatchSums().sum(new long[] { 0 }), b * r.Positions, 1.0 / r.Positions);
                else
                {
                    // [in, B·L], rows contiguous: each block of A's rows is a contiguous operand.
                    var patches = r.Patches();
                    next.AddInputMoments(layer, patches.permute(2, 0, 1).reshape(patches.shape[2], -1).contiguous(), 1.0 / r.Positions);
                }
                next.FactorG[layer.Key].add_(incrementG[layer.Key]);
            }
            next.LogLikelihoodSum.add_(logLikelihood.sum());
        }
        next.DataCount += b;
        next.Invalidate();
        return AlgorithmState.Finish(next, value, f.detach());
    }

    /// <summary>
    /// EKFAC (eigenvalue-corrected KFAC; docs/ALGORITHMS.md §4a): after the factors are fitted, a second pass over the
    /// data adds, per layer, Σᵢ Σ_c (Q_Gᵀ Jᵢc Q_A)² elementwise to <see cref="KfacLaplaceState.EigenvalueCorrectionSum"/>,
    /// where Jᵢc = Σ_l g_ilc a_ilᵀ is datum i's gradient of the layer's weight matrix for the same columns c as the fit
    /// (every column of the output Hessian's factor, or with sampled curvature one label drawn from the model, the same
    /// labels as the fit's when the batches are the same) and Q_A, Q_G the eigenvectors of the fitted factors, which stay
    /// fixed. Once it has seen data, <see cref="KfacLaplaceState.CurvatureEigenvalues"/> returns these instead of
    /// λ_G λ_Aᵀ: the exact diagonal of the layer's curvature in KFAC's eigenbasis.
    /// </summary>
    /// <exception cref="ArgumentException">The state covers other layers, or has another curvature, than this transform.</exception>
    /// <exception cref="InvalidOperationException">The state's factors have seen no data.</exception>
    public KfacLaplaceState UpdateEigenvalueCorrection(KfacLaplaceState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        LaplaceCore.EnsureMethod("Kfac", state.Method);
        if (!state.Layers.SequenceEqual(_layers))
            throw new ArgumentException($"The state covers the layers {string.Join(", ", state.Layers.Select(l => l.Key))}; this transform covers {string.Join(", ", _layers.Select(l => l.Key))}.", nameof(state));
        if (state.Curvature != (_sampled ? "sampled" : "exact"))
            throw new ArgumentException($"The state's factors have {state.Curvature} curvature; this transform's correction would use {(_sampled ? "sampled" : "exact")} curvature.", nameof(state));
        var eigen = state.Eigen();
        using var scope = NewDisposeScope();
        var (outputs, recorded) = Kfac.Record(_module, _layers, () => _model.Forward(state.Params, batch).Outputs);
        var f = OutputLikelihood.AsMatrix(outputs);
        var columns = Columns(f.detach(), state, state.CorrectionSteps);
        var increment = _layers.ToDictionary(l => l.Key, l => zeros_like(state.EigenvalueCorrectionSum[l.Key]));
        var c = columns.shape[2];
        using (enable_grad())
        {
            var patches = Kfac.RotatedPatches(recorded, _layers, eigen);
            for (long j = 0; j < c; j++)
            {
                var grads = Kfac.OutputGradients(recorded, _layers, (f * columns.select(2, j)).sum(), retain: j < c - 1);
                foreach (var layer in _layers)
                {
                    var (g, a) = (grads[layer.Key], patches[layer.Key]);
                    // One position (a Linear layer on vectors): each datum's rotated gradient is the outer product
                    // (Q_Gᵀ g)(Q_Aᵀ a)ᵀ, so the sum of their squares is one [out, B]·[B, in'] product, with no [B, out, in'] tensor.
                    if (a.shape[1] == 1)
                        increment[layer.Key].addmm_(g.squeeze(1).matmul(eigen[layer.Key].QG).square().t(), a.squeeze(1).square());
                    else
                        increment[layer.Key].add_(Kfac.RotatedJacobians(g, a, eigen[layer.Key].QG).square().sum(dim: 0));
                }
            }
        }
        Tensor logLikelihood;
        using (no_grad()) logLikelihood = _model.Likelihood.LogProb(f.detach(), _model.Targets(batch)).mean();
        NonFiniteException.ThrowIfNotFinite(state.CorrectionSteps, logLikelihood, new ParameterTree(increment.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value))));
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad())
            foreach (var layer in _layers)
                next.EigenvalueCorrectionSum[layer.Key].add_(increment[layer.Key]);
        next.CorrectionCount += f.shape[0];
        next.CorrectionSteps++;
        return next;
    }

    private bool Reduced(KfacLayer layer) => layer.IsConvolution && _convFactors == KfacConvFactors.Reduce;

    /// <summary>The output-Hessian columns of a batch [B, K, C]: the Hessian's factor, or one sampled cotangent drawn for <paramref name="step"/>.</summary>
    private Tensor Columns(Tensor f, KfacLaplaceState state, long step) =>
        _sampled ? SampledCotangent(f, state.Seed, step) : _model.Likelihood.HessianFactor(f);

    /// <summary>One column per datum whose outer product has the output Hessian as its expectation: the gradient of log p(ỹ | f) at a label ỹ drawn from the model.</summary>
    private Tensor SampledCotangent(Tensor f, long seed, long step)
    {
        var generator = new Rng().For(seed, step, f.device);
        switch (_model.Likelihood.Kind)
        {
            case OutputLikelihoodKind.Categorical:
            {
                var p = f.softmax(1);
                var y = multinomial(p, 1, generator: generator).squeeze(1);
                return (nn.functional.one_hot(y, f.shape[1]).to(f.dtype) - p).unsqueeze(2);
            }
            case OutputLikelihoodKind.Bernoulli:
            {
                var p = f.sigmoid();
                return (bernoulli(p, generator: generator) - p).unsqueeze(2);
            }
            default:
                return (randn(f.shape, dtype: f.dtype, device: f.device, generator: generator) / _model.Likelihood.Sigma).unsqueeze(2);
        }
    }
}

/// <summary>How KFAC treats the output positions of a convolution, which share its weights (docs/ALGORITHMS.md §4a).</summary>
public enum KfacConvFactors
{
    /// <summary>
    /// Every position counts as a datum of its own: A is the mean over positions of the patch's second moment, G the
    /// sum over positions of the output gradient's ("KFAC-expand"; the classic convolution factors).
    /// </summary>
    Expand,

    /// <summary>
    /// The positions are pooled before the outer products: A is the second moment of the patch averaged over positions,
    /// G that of the output gradient summed over positions ("KFAC-reduce"). Both factors then cost one outer product
    /// per datum instead of one per position; the approximation differs from <see cref="Expand"/> unless the layer has
    /// one position. It suits networks whose loss sees the positions pooled (global average pooling); where feature maps
    /// are flattened into a dense layer, averaging drops the patches' spatial variation and leaves most convolution
    /// directions with almost no curvature (the study's CNN: a far worse predictive than expand, docs/STUDY.md).
    /// </summary>
    Reduce,
}
