using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// The state of a dense Laplace approximation (empirical Fisher, GGN or Hessian): the mode and a [P, P] precision over
/// the selected parameters flattened in the tree's order.
/// </summary>
public sealed class DenseLaplaceState : AlgorithmState, IPersistentState<DenseLaplaceState>
{
    private readonly List<string> _warnings = new();

    private DenseLaplaceState(StateRecord fields) : base(fields) { }

    internal static DenseLaplaceState New(string method, ParameterTree parameters, IReadOnlyList<string> subset, Tensor precision)
    {
        var fields = NewFields(Kind, KindVersion, parameters);
        fields.Set("method", method);
        fields.Set("subset", string.Join("\n", subset));
        fields.Set("precision", precision);
        return new DenseLaplaceState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new DenseLaplaceState(fields);

    /// <summary>Which curvature built the precision ("DenseFisher", "DenseGgn" or "DenseHessian").</summary>
    public string Method => Fields.GetString("method");

    /// <summary>The names of the parameters the precision covers, in the tree's order (<see cref="ParameterTree.Layout"/> of <c>Params.Select(Subset)</c> locates each in the precision).</summary>
    public IReadOnlyList<string> Subset => Fields.GetString("subset").Split('\n');

    /// <summary>The [P, P] precision (prior precision plus the curvature of every datum seen).</summary>
    public Tensor Precision => Fields.GetTensor("precision");

    /// <summary>Warnings raised while sampling (precision eigenvalues floored); not saved.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <inheritdoc />
    public static string Kind => "DenseLaplace";

    /// <inheritdoc />
    /// <remarks>Version 1 spelled the log density "logPosterior".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DenseLaplaceState ReadFrom(StateRecord record) =>
        new(Checked(RenameVersion1Fields(record), ("method", typeof(string)), ("subset", typeof(string)), ("precision", typeof(Tensor))));

    /// <summary>
    /// <paramref name="count"/> draws θ ~ N(θ̂, T · precision⁻¹), every leaf of the full tree with a leading dimension
    /// <paramref name="count"/>; leaves outside the subset repeat the mode. When the precision is not positive definite
    /// (a near-zero or negative curvature direction, e.g. a Hessian away from the mode) its eigenvalues below
    /// <paramref name="minPrecision"/> are raised to it and the fact is reported in <see cref="Warnings"/>.
    /// </summary>
    /// <param name="count">Number of draws.</param>
    /// <param name="seed">Seed of the draws.</param>
    /// <param name="temperature">T: the covariance is T · precision⁻¹.</param>
    /// <param name="minPrecision">The eigenvalue floor.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public ParameterTree Sample(long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        Check.NonNegative(temperature, nameof(temperature));
        Check.Positive(minPrecision, nameof(minPrecision));
        using var scope = NewDisposeScope();
        var precision = Precision;
        var (l, info) = linalg.cholesky_ex(precision);
        // A failed factorisation, or a pivot below the floor (pivots bound the smallest eigenvalue from above), sends us
        // to the eigendecomposition; a well-conditioned precision never pays for it.
        var pivots = info.item<int>() == 0 ? l.diagonal().square() : null;
        if (pivots is null || (pivots < minPrecision).any().item<bool>())
        {
            var (values, vectors) = linalg.eigh(precision);
            var low = (values < minPrecision).sum().item<long>();
            if (low > 0)
            {
                _warnings.Add($"{low} eigenvalue(s) of the precision were below {minPrecision} (smallest {values.min().item<double>():G4}) and were floored to it before sampling.");
                precision = vectors.mm(diag(values.clamp_min(minPrecision))).mm(vectors.t());
                precision = (precision + precision.t()) / 2;
                l = linalg.cholesky(precision);
            }
        }
        var generator = new Rng().For(seed, 0, Params.Device);
        var p = precision.shape[0];
        var xi = randn(new[] { p, count }, dtype: precision.dtype, device: precision.device, generator: generator);
        // precision = L Lᵀ, so L⁻ᵀ ξ has covariance (L Lᵀ)⁻¹.
        var z = linalg.solve_triangular(l.t(), xi, upper: true).t() * Math.Sqrt(temperature); // [count, P]
        var subset = Params.Select(Subset);
        var draws = new List<KeyValuePair<string, Tensor>>();
        long offset = 0;
        foreach (var (name, leaf) in subset)
        {
            var n = leaf.numel();
            var shape = new[] { count }.Concat(leaf.shape).ToArray();
            draws.Add(new(name, leaf.detach().unsqueeze(0) + z.narrow(1, offset, n).reshape(shape)));
            offset += n;
        }
        return DiagLaplaceState.Expand(Params, count).Insert(new ParameterTree(draws)).Map(t => t.contiguous()).MoveToOuterDisposeScope();
    }
}
