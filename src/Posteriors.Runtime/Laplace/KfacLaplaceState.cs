using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>One layer a KFAC Laplace approximation covers.</summary>
/// <param name="Name">The layer's module name (its parameters are <c>Name.weight</c> and, if <paramref name="HasBias"/>, <c>Name.bias</c>).</param>
/// <param name="IsConvolution">A Conv2d layer (otherwise Linear).</param>
/// <param name="HasBias">Whether the layer has a bias (it becomes the last column of the layer's weight matrix).</param>
public sealed record KfacLayer(string Name, bool IsConvolution, bool HasBias)
{
    /// <summary>The name of the layer's weight.</summary>
    public string Weight => Name.Length == 0 ? "weight" : Name + ".weight";

    /// <summary>The name of the layer's bias.</summary>
    public string Bias => Name.Length == 0 ? "bias" : Name + ".bias";

    /// <summary>The key of the layer in the factor trees (the module name; "." for a module that is itself the layer).</summary>
    public string Key => Name.Length == 0 ? "." : Name;
}

/// <summary>
/// The state of a KFAC Laplace approximation (docs/ALGORITHMS.md §4a): the mode, and per layer the Kronecker factors
/// A (mean over data of the layer's input second moment) and G (sum over data of the output-gradient second moment),
/// so that the layer's precision is G ⊗ A + δ I with δ the layer's prior precision.
/// </summary>
public sealed class KfacLaplaceState : AlgorithmState, IPersistentState<KfacLaplaceState>
{
    private Dictionary<string, (Tensor LambdaA, Tensor QA, Tensor LambdaG, Tensor QG)>? _eigen;

    // Updates add only the blocks of A on and above the diagonal (half the multiply-adds of a large input factor);
    // the lower ones are mirrored in once, when A is next read, saved or copied.
    private bool _lowerStale;

    private KfacLaplaceState(StateRecord fields) : base(fields) { }

    internal static KfacLaplaceState New(ParameterTree parameters, IReadOnlyList<KfacLayer> layers, bool sampled, KfacConvFactors convFactors,
        double priorPrecision, long seed)
    {
        var fields = NewFields(Kind, KindVersion, parameters);
        fields.Set("method", "Kfac");
        fields.Set("curvature", sampled ? "sampled" : "exact");
        fields.Set("conv_factors", ConvFactorsName(convFactors));
        fields.Set("layers", string.Join("\n", layers.Select(l => $"{l.Key}\t{(l.IsConvolution ? "conv2d" : "linear")}\t{(l.HasBias ? "bias" : "")}")));
        fields.Set("factor_a", new ParameterTree(layers.Select(l => new KeyValuePair<string, Tensor>(l.Key, ZerosSquare(parameters, l, InputSize(parameters, l))))));
        fields.Set("factor_g", new ParameterTree(layers.Select(l => new KeyValuePair<string, Tensor>(l.Key, ZerosSquare(parameters, l, parameters[l.Weight].shape[0])))));
        fields.Set("prior_precision", new ParameterTree(layers.Select(l => new KeyValuePair<string, Tensor>(l.Key,
            tensor(priorPrecision, dtype: parameters.ScalarType, device: parameters.Device)))));
        fields.Set("count", 0L);
        fields.Set("log_likelihood", zeros(Array.Empty<long>(), dtype: parameters.ScalarType, device: parameters.Device));
        fields.Set(SeedField, seed);
        AddCorrectionFields(fields, layers);
        return new KfacLaplaceState(fields);
    }

    // The eigenvalue corrections start empty: [out, in'] zeros per layer (the shapes of G and A), no data, no batches;
    // the state owns them whatever dispose scope it is built or loaded in.
    private static void AddCorrectionFields(StateRecord fields, IReadOnlyList<KfacLayer> layers)
    {
        var g = fields.GetTree("factor_g");
        var a = fields.GetTree("factor_a");
        fields.Set("eigenvalue_correction", new ParameterTree(layers.Select(l => new KeyValuePair<string, Tensor>(l.Key,
            zeros(new[] { g[l.Key].shape[0], a[l.Key].shape[0] }, dtype: g[l.Key].dtype, device: g[l.Key].device)))).DetachFromDisposeScope());
        fields.Set("correction_count", 0L);
        fields.Set("correction_steps", 0L);
    }

    private static Tensor ZerosSquare(ParameterTree parameters, KfacLayer layer, long n) =>
        zeros(new[] { n, n }, dtype: parameters[layer.Weight].dtype, device: parameters[layer.Weight].device);

    /// <summary>The columns of a layer's weight matrix [out, in·kh·kw (+1 for the bias)].</summary>
    internal static long InputSize(ParameterTree parameters, KfacLayer layer) =>
        parameters[layer.Weight].numel() / parameters[layer.Weight].shape[0] + (layer.HasBias ? 1 : 0);

    private protected override AlgorithmState Create(StateRecord fields) => new KfacLaplaceState(fields);

    /// <inheritdoc />
    public static string Kind => "KfacLaplace";

    /// <inheritdoc />
    public static int KindVersion => 3;

    /// <inheritdoc />
    /// <remarks>
    /// Version 1 had no "conv_factors" field: its convolutions' factors are <see cref="KfacConvFactors.Expand"/>.
    /// Versions 1 and 2 had no eigenvalue corrections: they load without any (the factors' own eigenvalues).
    /// </remarks>
    public static KfacLaplaceState ReadFrom(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.KindVersion == 1 && !record.Has("conv_factors")) record.Set("conv_factors", ConvFactorsName(KfacConvFactors.Expand));
        var fields = Checked(record, ("method", typeof(string)), ("curvature", typeof(string)), ("conv_factors", typeof(string)),
            ("layers", typeof(string)), ("factor_a", typeof(ParameterTree)), ("factor_g", typeof(ParameterTree)), ("prior_precision", typeof(ParameterTree)),
            ("count", typeof(long)), ("log_likelihood", typeof(Tensor)), (SeedField, typeof(long)));
        var state = new KfacLaplaceState(fields);
        if (record.KindVersion <= 2 && !record.Has("eigenvalue_correction")) AddCorrectionFields(fields, state.Layers);
        fields.Require(new[] { ("eigenvalue_correction", typeof(ParameterTree)), ("correction_count", typeof(long)), ("correction_steps", typeof(long)) });
        _ = state.ConvFactors;
        return state;
    }

    private static string ConvFactorsName(KfacConvFactors convFactors) => convFactors == KfacConvFactors.Reduce ? "reduce" : "expand";

    /// <summary>"Kfac".</summary>
    public string Method => Fields.GetString("method");

    /// <summary>"exact" (every column of the output Hessian's factor) or "sampled" (one label drawn from the model per datum).</summary>
    public string Curvature => Fields.GetString("curvature");

    /// <summary>How the convolutions' factors treat their output positions.</summary>
    /// <exception cref="InvalidOperationException">The state's "conv_factors" field is neither "expand" nor "reduce".</exception>
    public KfacConvFactors ConvFactors => Fields.GetString("conv_factors") switch
    {
        "expand" => KfacConvFactors.Expand,
        "reduce" => KfacConvFactors.Reduce,
        var other => throw new InvalidOperationException($"The state's conv_factors is '{other}'; expected 'expand' or 'reduce'."),
    };

    /// <summary>The layers covered, in the module's order.</summary>
    public IReadOnlyList<KfacLayer> Layers => Fields.GetString("layers").Split('\n').Select(line =>
    {
        var parts = line.Split('\t');
        return new KfacLayer(parts[0] == "." ? "" : parts[0], parts[1] == "conv2d", parts[2] == "bias");
    }).ToList();

    /// <summary>The names of the parameters the approximation covers (weights and biases of <see cref="Layers"/>), in the tree's order.</summary>
    public IReadOnlyList<string> Subset
    {
        get
        {
            var names = Layers.SelectMany(l => l.HasBias ? new[] { l.Weight, l.Bias } : new[] { l.Weight }).ToHashSet();
            return Params.Names.Where(names.Contains).ToList();
        }
    }

    /// <summary>
    /// Σ over data of Σ over positions of a aᵀ / positions (a the layer's input patch, 1 appended for the bias), per layer
    /// key; with <see cref="KfacConvFactors.Reduce"/>, a convolution's is Σ over data of ā āᵀ (ā the patch averaged over positions).
    /// </summary>
    public ParameterTree FactorASum
    {
        get
        {
            MirrorUpperBlocks();
            return Fields.GetTree("factor_a");
        }
    }

    /// <summary>Σ over data and output-Hessian columns of Σ over positions of g gᵀ (g the gradient at the layer's output), per layer key.</summary>
    public ParameterTree FactorG => Fields.GetTree("factor_g");

    /// <summary>The prior precision δ of each layer (0-d tensors keyed like the factors).</summary>
    public ParameterTree PriorPrecision => Fields.GetTree("prior_precision");

    /// <summary>How many data the factors have seen (N when fitted on the whole training set).</summary>
    public long DataCount
    {
        get => Fields.GetLong("count");
        internal set => Fields.Set("count", value);
    }

    /// <summary>Σ over the data seen of log p(yᵢ | f(xᵢ; θ̂)).</summary>
    public Tensor LogLikelihoodSum => Fields.GetTensor("log_likelihood");

    /// <summary>The seed of the sampled curvature.</summary>
    public long Seed => Fields.GetLong(SeedField);

    /// <summary>
    /// Per layer key, Σ over the data of the eigenvalue-correction pass of (Q_Gᵀ ∇_W ℓᵢ Q_A)² elementwise ([out, in']; see
    /// <see cref="Kfac{TBatch}.UpdateEigenvalueCorrection"/>): the curvature's exact diagonal in the factors' eigenbasis.
    /// Zeros until that pass has seen data.
    /// </summary>
    public ParameterTree EigenvalueCorrectionSum => Fields.GetTree("eigenvalue_correction");

    /// <summary>How many data the eigenvalue-correction pass has seen (0: the factors' own eigenvalues are used).</summary>
    public long CorrectionCount
    {
        get => Fields.GetLong("correction_count");
        internal set => Fields.Set("correction_count", value);
    }

    /// <summary>Batches of the eigenvalue-correction pass so far (the step its sampled labels are drawn for).</summary>
    internal long CorrectionSteps
    {
        get => Fields.GetLong("correction_steps");
        set => Fields.Set("correction_steps", value);
    }

    /// <summary>Whether <see cref="CurvatureEigenvalues"/> are the corrected ones (EKFAC) rather than λ_G λ_Aᵀ.</summary>
    public bool IsCorrected => CorrectionCount > 0;

    /// <summary>
    /// Drops the eigenvalue corrections (back to the factors' own eigenvalues), e.g. to add more batches to the factors,
    /// which changes their eigenbases.
    /// </summary>
    public void ClearEigenvalueCorrection()
    {
        using (no_grad())
            foreach (var s in EigenvalueCorrectionSum.Leaves) s.zero_();
        CorrectionCount = 0;
        CorrectionSteps = 0;
    }

    /// <summary>
    /// Sets every layer's prior precision to <paramref name="priorPrecision"/> (or, with <paramref name="perLayer"/>, each
    /// layer's to its own value, in <see cref="Layers"/>' order), e.g. after <see cref="MarginalLikelihood.Tune"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is not positive and finite (the message names the layer).</exception>
    public void SetPriorPrecision(double priorPrecision, IReadOnlyList<double>? perLayer = null)
    {
        var layers = Layers;
        if (perLayer is not null && perLayer.Count != layers.Count)
            throw new ArgumentException($"{perLayer.Count} prior precisions for {layers.Count} layers.", nameof(perLayer));
        for (var i = 0; i < layers.Count; i++)
        {
            var value = perLayer?[i] ?? priorPrecision;
            if (!(value > 0) || double.IsInfinity(value))
                throw new ArgumentOutOfRangeException(perLayer is null ? nameof(priorPrecision) : nameof(perLayer), value,
                    $"The prior precision of layer '{layers[i].Key}' must be positive and finite.");
            using (no_grad()) PriorPrecision[layers[i].Key].fill_(value);
        }
    }

    /// <summary>
    /// Adds scale · c cᵀ to a layer's A, where the rows of <paramref name="columns"/> [in, R] are the layer's inputs
    /// without the bias (one column per datum and position): only the blocks on and above the diagonal, each one
    /// addmm into a view of A with contiguous row ranges of <paramref name="columns"/> as operands (no copies); with a bias,
    /// its column is scale · the row sums of c and its corner scale · R.
    /// </summary>
    internal void AddInputMoments(KfacLayer layer, Tensor columns, double scale)
    {
        var a = Fields.GetTree("factor_a")[layer.Key];
        var (n, r) = (columns.shape[0], columns.shape[1]);
        // addmm_ takes a single-precision alpha: a float64 factor gets the scale in its own precision, on the left operand.
        var alpha = (float)scale;
        var left = columns;
        if (alpha != scale && a.dtype != ScalarType.Float32)
        {
            left = columns * scale;
            alpha = 1;
        }
        var blocks = Math.Min(MaxInputBlocks, (n + InputBlockColumns - 1) / InputBlockColumns);
        var size = (n + blocks - 1) / blocks;
        for (long i = 0; i < n; i += size)
        {
            var rows = left.narrow(0, i, Math.Min(size, n - i));
            for (long j = i; j < n; j += size)
            {
                var width = Math.Min(size, n - j);
                a.narrow(0, i, rows.shape[0]).narrow(1, j, width).addmm_(rows, columns.narrow(0, j, width).t(), beta: 1, alpha: alpha);
            }
        }
        AddBiasMoments(layer, a, columns.sum(1), r, scale);
    }

    /// <summary>
    /// Adds scale · <paramref name="moments"/> (Σ a aᵀ over the layer's inputs a without the bias, [in, in], whole or at
    /// least right on and above the diagonal) to a layer's A; with a bias, its column gets scale · <paramref name="sums"/>
    /// (Σ a) and its corner scale · <paramref name="count"/> (the number of inputs).
    /// </summary>
    internal void AddInputMoments(KfacLayer layer, Tensor moments, Tensor sums, long count, double scale)
    {
        var a = Fields.GetTree("factor_a")[layer.Key];
        var n = moments.shape[0];
        a.narrow(0, 0, n).narrow(1, 0, n).add_(moments, alpha: scale);
        AddBiasMoments(layer, a, sums, count, scale);
    }

    private void AddBiasMoments(KfacLayer layer, Tensor a, Tensor sums, long count, double scale)
    {
        var n = sums.shape[0];
        if (layer.HasBias)
        {
            a.narrow(0, 0, n).select(1, n).add_(sums, alpha: scale);
            a[n, n].add_(count * scale);
        }
        _lowerStale = true;
    }

    /// <summary>
    /// The most columns of one block of A (blocks are as even as possible), unless that makes more than
    /// <see cref="MaxInputBlocks"/>. Single-threaded on 2 cores, the products of the study's CNN cost least with blocks
    /// of 150–400 columns: fc1's 3,136 in 8 or 17 blocks took 0.68 the time of one full product, conv2's 288 in 2
    /// blocks 0.86; smaller blocks lose more to the less efficient products than they save (conv2 in 8 blocks: 1.1).
    /// </summary>
    internal static long InputBlockColumns { get; set; } = 192;

    /// <summary>The most blocks per side (8: 36 products), which keeps the number of multithreaded BLAS calls per update small.</summary>
    internal static long MaxInputBlocks { get; set; } = 8;

    private void MirrorUpperBlocks()
    {
        if (!_lowerStale) return;
        using var scope = NewDisposeScope();
        using (no_grad())
            foreach (var a in Fields.GetTree("factor_a").Leaves)
                a.copy_(a.triu() + a.triu(1).t());
        _lowerStale = false;
    }

    private protected override void Sync() => MirrorUpperBlocks();

    /// <summary>Drops the cached eigendecompositions (after the factors change).</summary>
    internal void Invalidate() => _eigen = null;

    /// <summary>
    /// Per layer: the eigenvalues and eigenvectors of A = <see cref="FactorASum"/> / <see cref="DataCount"/> and of
    /// <see cref="FactorG"/> (cached until the next update; eigenvalues below 0 from round-off are raised to 0).
    /// </summary>
    public IReadOnlyDictionary<string, (Tensor LambdaA, Tensor QA, Tensor LambdaG, Tensor QG)> Eigen()
    {
        if (_eigen is not null) return _eigen;
        if (DataCount == 0) throw new InvalidOperationException("The KFAC factors have seen no data: call Update first.");
        var result = new Dictionary<string, (Tensor, Tensor, Tensor, Tensor)>();
        foreach (var layer in Layers)
        {
            using var scope = NewDisposeScope();
            var (la, qa) = SymmetricEigen(FactorASum[layer.Key] / DataCount, layer.Key, "A");
            var (lg, qg) = SymmetricEigen(FactorG[layer.Key], layer.Key, "G");
            result[layer.Key] = (la.DetachFromDisposeScope(), qa.DetachFromDisposeScope(), lg.DetachFromDisposeScope(), qg.DetachFromDisposeScope());
        }
        return _eigen = result;
    }

    // In the factors' own precision, retried in float64 when that fails (a non-finite result, seen in single precision
    // for rank-deficient factors such as a ReLU layer's input second moment over fewer data than its width). On the
    // study's CNN fitted to Fashion-MNIST, single precision took 0.66 the time of double for fc1's 3,137² A and moved
    // the log evidence by 0.02 nats and the weight covariance's quadratic forms by at most 1e-5 relative.
    private static (Tensor Values, Tensor Vectors) SymmetricEigen(Tensor m, string layer, string factor)
    {
        var symmetric = (m + m.t()) / 2;
        var result = FiniteEigen(symmetric);
        if (result is null && symmetric.dtype != ScalarType.Float64) result = FiniteEigen(symmetric.to(ScalarType.Float64));
        if (result is not { } eigen)
            throw new NonFiniteException($"The eigendecomposition of factor {factor} of layer '{layer}' is not finite.", 0, null);
        return (eigen.Values.clamp_min(0).to(m.dtype), eigen.Vectors.to(m.dtype));
    }

    private static (Tensor Values, Tensor Vectors)? FiniteEigen(Tensor m)
    {
        try
        {
            var (values, vectors) = linalg.eigh(m);
            return isfinite(values).all().item<bool>() && isfinite(vectors).all().item<bool>() ? (values, vectors) : null;
        }
        catch (System.Runtime.InteropServices.ExternalException)
        {
            return null;   // LAPACK did not converge
        }
    }

    /// <summary>
    /// The eigenvalues of a layer's curvature in the basis Q_G ⊗ Q_A, as an [out, in'] matrix (without the prior): λ_G λ_Aᵀ
    /// (those of G ⊗ A), or, once <see cref="Kfac{TBatch}.UpdateEigenvalueCorrection"/> has seen data, the corrected
    /// ones, <see cref="EigenvalueCorrectionSum"/> · <see cref="DataCount"/> / <see cref="CorrectionCount"/> (the
    /// curvature's diagonal in that basis, scaled to the factors' data when the pass saw fewer). The evidence, the draws
    /// and the linearised predictive all read them here.
    /// </summary>
    public Tensor CurvatureEigenvalues(KfacLayer layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var (la, _, lg, _) = Eigen()[layer.Key];
        if (IsCorrected) return EigenvalueCorrectionSum[layer.Key] * ((double)DataCount / CorrectionCount);
        return lg.unsqueeze(1) * la.unsqueeze(0);
    }

    /// <summary>The layer's weight matrix [out, in'] of the mode (bias as the last column).</summary>
    internal Tensor WeightMatrix(KfacLayer layer)
    {
        var w = Params[layer.Weight].detach();
        var matrix = w.reshape(w.shape[0], -1);
        return layer.HasBias ? cat(new[] { matrix, Params[layer.Bias].detach().unsqueeze(1) }, 1) : matrix;
    }

    /// <summary>
    /// <paramref name="count"/> draws θ ~ N(θ̂, T · (G ⊗ A + δ I)⁻¹) layer by layer: with A = Q_A Λ_A Q_Aᵀ and
    /// G = Q_G Λ_G Q_Gᵀ a draw of a layer's weight matrix is θ̂ + √T · Q_G (Z ⊘ √(λ_G λ_Aᵀ + δ)) Q_Aᵀ, Z standard normal.
    /// Every leaf of the full tree gets a leading dimension <paramref name="count"/>; leaves outside the layers repeat the mode.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public ParameterTree Sample(long count, long seed = 0, double temperature = 1)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        Check.NonNegative(temperature, nameof(temperature));
        using var scope = NewDisposeScope();
        var generator = new Rng().For(seed, 0, Params.Device);
        var draws = new List<KeyValuePair<string, Tensor>>();
        foreach (var layer in Layers)
        {
            var (la, qa, lg, qg) = Eigen()[layer.Key];
            var mode = WeightMatrix(layer);
            var sd = (CurvatureEigenvalues(layer) + PriorPrecision[layer.Key]).rsqrt() * Math.Sqrt(temperature);
            var z = randn(new[] { count }.Concat(mode.shape).ToArray(), dtype: mode.dtype, device: mode.device, generator: generator);
            var matrix = mode.unsqueeze(0) + qg.matmul(z * sd).matmul(qa.t());   // [count, out, in']
            var w = Params[layer.Weight];
            var columns = w.numel() / w.shape[0];
            draws.Add(new(layer.Weight, matrix.narrow(2, 0, columns).reshape(new[] { count }.Concat(w.shape).ToArray())));
            if (layer.HasBias) draws.Add(new(layer.Bias, matrix.select(2, columns)));
        }
        return DiagLaplaceState.Expand(Params, count).Insert(new ParameterTree(draws)).Map(t => t.contiguous()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The KFAC precision as a dense [P, P] matrix over <see cref="Subset"/> flattened in the tree's order (block-diagonal
    /// over layers; for comparison with the dense GGN on small models — it has P² entries). With eigenvalue corrections a
    /// layer's block is (Q_G ⊗ Q_A) diag(s) (Q_G ⊗ Q_A)ᵀ + δ I instead of G ⊗ A + δ I.
    /// </summary>
    public Tensor DensePrecision()
    {
        using var scope = NewDisposeScope();
        var subset = Params.Select(Subset);
        var p = subset.NumberOfElements;
        var dense = zeros(new[] { p, p }, dtype: subset.ScalarType, device: subset.Device);
        foreach (var layer in Layers)
        {
            Tensor block;
            if (IsCorrected)
            {
                var (_, qa, _, qg) = Eigen()[layer.Key];
                var q = Kron(qg, qa);
                block = (q * CurvatureEigenvalues(layer).flatten()).mm(q.t());
            }
            else
                block = Kron(FactorG[layer.Key], FactorASum[layer.Key] / DataCount);
            var idx = tensor(MatrixIndex(layer), device: dense.device);
            var blockWithPrior = block + eye(block.shape[0], dtype: block.dtype, device: block.device) * PriorPrecision[layer.Key];
            dense.index_put_(blockWithPrior, idx.unsqueeze(1), idx.unsqueeze(0));
        }
        return dense.MoveToOuterDisposeScope();
    }

    /// <summary>X ⊗ Y, rows and columns in the weight matrix's row-major order.</summary>
    internal static Tensor Kron(Tensor x, Tensor y) => (x.unsqueeze(1).unsqueeze(3) * y.unsqueeze(0).unsqueeze(2)).reshape(x.shape[0] * y.shape[0], -1);

    /// <summary>
    /// Where entry (o, j) of a layer's weight matrix, in row-major order, sits in <see cref="Subset"/> flattened in the
    /// tree's order: element o·columns + j of the weight, or element o of the bias (j = columns).
    /// </summary>
    internal long[] MatrixIndex(KfacLayer layer)
    {
        var offsets = Params.Select(Subset).Layout.ToDictionary(s => s.Name, s => s.Offset);
        var rows = Params[layer.Weight].shape[0];
        var columns = Params[layer.Weight].numel() / rows;
        var index = new long[rows * (columns + (layer.HasBias ? 1 : 0))];
        var k = 0;
        for (long o = 0; o < rows; o++)
        {
            for (long j = 0; j < columns; j++) index[k++] = offsets[layer.Weight] + o * columns + j;
            if (layer.HasBias) index[k++] = offsets[layer.Bias] + o;
        }
        return index;
    }
}
