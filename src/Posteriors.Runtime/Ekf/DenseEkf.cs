using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ekf;

/// <summary>
/// An extended Kalman filter with a dense empirical Fisher (docs/ALGORITHMS.md §5): per batch, with transition
/// covariance Q = s² I, P_pred = (P⁻¹ + Q)⁻¹ (P itself when s = 0), P' = P_pred + lr · F with F = (1/B) Σᵢ gᵢ gᵢᵀ, and
/// μ' = μ + lr P'⁻¹ ḡ (a Cholesky solve).
/// </summary>
/// <remarks>
/// The precision update ADDS lr · F. The Python reference subtracts it, which makes the precision indefinite after a
/// few informative batches; adding keeps P positive definite (and reduces to the diagonal filter on a diagonal problem).
/// The state keeps the precision P; memory grows as P².
/// </remarks>
public static class DenseEkf
{
    /// <summary>Builds the filter (Q = transitionSd² I; the covariance starts as initSd² I).</summary>
    /// <inheritdoc cref="DiagEkf.Build{TBatch}" path="/param"/>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DenseEkf<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd = 0,
        double initSd = 1, nn.Module? module = null) =>
        new(logLikelihood, lr, transitionSd, initSd, module);

    /// <summary><paramref name="count"/> draws from N(μ, P⁻¹), every leaf with a leading dimension <paramref name="count"/>.</summary>
    public static ParameterTree Sample(DenseEkfState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        using var scope = NewDisposeScope();
        var mu = state.Params.Flatten();
        var l = Cholesky(state.Precision, "precision", state.Step);
        var xi = randn(new[] { mu.shape[0], count }, dtype: mu.dtype, device: mu.device, generator: new Rng().For(seed, 0, mu.device));
        // P = L Lᵀ, so L⁻ᵀ ξ has covariance P⁻¹.
        var draws = mu.unsqueeze(0) + linalg.solve_triangular(l.t(), xi, upper: true).t();
        return state.Params.UnflattenRows(draws).MoveToOuterDisposeScope();
    }

    /// <summary>The lower Cholesky factor of a symmetric positive-definite matrix.</summary>
    /// <exception cref="NonFiniteException">The matrix is not positive definite.</exception>
    internal static Tensor Cholesky(Tensor matrix, string what, long step)
    {
        var (l, info) = linalg.cholesky_ex(matrix);
        if (info.item<int>() != 0)
            throw new NonFiniteException($"The {what} is not positive definite at step {step}; lower lr or check the log-likelihood.", step, null);
        return l;
    }

    /// <summary>The inverse of a symmetric positive-definite matrix through its Cholesky factor, symmetrised.</summary>
    internal static Tensor SpdInverse(Tensor matrix, string what, long step)
    {
        var inverse = cholesky_inverse(Cholesky(matrix, what, step));
        return (inverse + inverse.t()) / 2;
    }
}

/// <summary>The state of the dense EKF: the mean μ (<see cref="AlgorithmState.Params"/>) and the precision P [P, P].</summary>
public sealed class DenseEkfState : AlgorithmState, IPersistentState<DenseEkfState>
{
    private DenseEkfState(StateRecord fields) : base(fields) { }

    internal static DenseEkfState New(ParameterTree mean, Tensor precision)
    {
        var fields = NewFields(Kind, KindVersion, mean);
        fields.Set("precision", precision);
        return new DenseEkfState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new DenseEkfState(fields);

    /// <summary>The filtered precision P over the flattened parameters (<see cref="ParameterTree.Layout"/> locates each leaf).</summary>
    public Tensor Precision => Fields.GetTensor("precision");

    /// <summary>The filtered covariance P⁻¹: a new tensor computed by one inversion on every call.</summary>
    /// <exception cref="NonFiniteException">The precision is not positive definite.</exception>
    public Tensor Covariance() => DenseEkf.SpdInverse(Precision, "precision", Step);

    /// <inheritdoc />
    public static string Kind => "DenseEkf";

    /// <inheritdoc />
    /// <remarks>Version 1 kept the covariance (read back by inverting it), spelled the mean "mean" and the log density "logPosterior".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DenseEkfState ReadFrom(StateRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.KindVersion < 2 && record.Has("covariance"))
        {
            record.Set("precision", DenseEkf.SpdInverse(record.GetTensor("covariance"), "saved covariance", 0));
            record.Remove("covariance");
        }
        return new(Checked(RenameVersion1Fields(record), ("precision", typeof(Tensor))));
    }
}

/// <summary>The dense empirical Fisher EKF. See <see cref="DenseEkf"/>.</summary>
public sealed class DenseEkf<TBatch> : EkfTransform<TBatch>, ITransform<DenseEkfState, TBatch>
{
    internal DenseEkf(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd, double initSd, nn.Module? module)
        : base(logLikelihood, lr, transitionSd, initSd, module) { }

    /// <inheritdoc />
    public DenseEkfState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var precision = eye(parameters.NumberOfElements, dtype: parameters.ScalarType, device: parameters.Device) * (1 / (InitSd * InitSd));
        return DenseEkfState.New(parameters, precision.DetachFromDisposeScope());
    }

    /// <summary>One predict–update step on <paramref name="batch"/>.</summary>
    public DenseEkfState Update(DenseEkfState state, TBatch batch, bool inplace = false)
    {
        using var scope = NewDisposeScope();
        var (lr, factors, b, value, meanGrad) = Observe(state, batch);
        var g = cat(factors.Materialize().Leaves.Select(t => t.reshape(b, -1)).ToArray(), 1);
        var fisher = g.t().mm(g) / b;
        var predicted = TransitionSd == 0
            ? state.Precision                                                                    // P_pred = P when Q = 0
            : DenseEkf.SpdInverse(DenseEkf.SpdInverse(state.Precision, "precision", state.Step)
                + eye(fisher.shape[0], dtype: fisher.dtype, device: fisher.device) * (TransitionSd * TransitionSd), "predicted covariance", state.Step);
        var precision = predicted + lr * fisher;                                                 // P' = P_pred + lr F
        var l = DenseEkf.Cholesky(precision, "updated precision", state.Step);
        var step = cholesky_solve(meanGrad.Flatten().unsqueeze(1), l).squeeze(1) * lr;           // lr P'⁻¹ ḡ
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad())
        {
            var increments = next.Params.Unflatten(step);
            for (var i = 0; i < increments.Count; i++) next.Params.Leaves[i].add_(increments.Leaves[i]);
            next.Precision.copy_(precision);
        }
        return AlgorithmState.Finish(next, value, factors.Aux);
    }

    /// <summary>Draws from the filtered Gaussian; see <see cref="DenseEkf.Sample"/>.</summary>
    public ParameterTree Sample(DenseEkfState state, long count, long seed = 0) => DenseEkf.Sample(state, count, seed);
}
