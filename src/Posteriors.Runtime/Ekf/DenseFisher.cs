using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ekf;

/// <summary>
/// An extended Kalman filter with a dense empirical Fisher (docs/ALGORITHMS.md §5): per batch, with transition covariance
/// Q = s² I, P_pred = (Σ + Q)⁻¹, P' = P_pred + lr · F with F = (1/B) Σᵢ gᵢ gᵢᵀ, Σ' = P'⁻¹ and μ' = μ + lr Σ' ḡ.
/// </summary>
/// <remarks>
/// The precision update ADDS lr · F. The Python reference subtracts it, which makes the precision indefinite after a
/// few informative batches; adding keeps Σ positive definite (and reduces to the diagonal filter on a diagonal problem).
/// Memory grows as P².
/// </remarks>
public static class DenseFisher
{
    /// <summary>Builds the filter.</summary>
    /// <param name="logLikelihood">The per-datum log-likelihood log p(yᵢ | xᵢ, θ).</param>
    /// <param name="lr">lr &gt; 0, constant or schedule.</param>
    /// <param name="transitionSd">s ≥ 0: Q = s² I (default 0).</param>
    /// <param name="initSd">Σ starts as initSd² I (default 1).</param>
    /// <param name="module">The module the log-likelihood evaluates through, if any (nn.Linear fast path).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DenseFisher<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd = 0,
        double initSd = 1, nn.Module? module = null)
    {
        ArgumentNullException.ThrowIfNull(lr);
        return new(logLikelihood, lr.Validated(nameof(lr), positive: true), Check.NonNegative(transitionSd, nameof(transitionSd)),
            Check.Positive(initSd, nameof(initSd)), module);
    }

    /// <summary><paramref name="count"/> draws from N(μ, Σ), every leaf with a leading dimension <paramref name="count"/>.</summary>
    public static ParameterTree Sample(DenseEkfState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        using var scope = NewDisposeScope();
        var mu = state.Params.Flatten();
        var l = linalg.cholesky(state.Covariance);
        var xi = randn(new[] { count, mu.shape[0] }, dtype: mu.dtype, device: mu.device, generator: new Rng().For(seed, 0, mu.device));
        var draws = mu.unsqueeze(0) + xi.mm(l.t());
        var leaves = new List<KeyValuePair<string, Tensor>>();
        long offset = 0;
        foreach (var (name, leaf) in state.Params)
        {
            leaves.Add(new(name, draws.narrow(1, offset, leaf.numel()).reshape(new[] { count }.Concat(leaf.shape).ToArray()).contiguous()));
            offset += leaf.numel();
        }
        return new ParameterTree(leaves).MoveToOuterDisposeScope();
    }

    /// <summary>The inverse of a symmetric positive-definite matrix through its Cholesky factor, symmetrised.</summary>
    internal static Tensor SpdInverse(Tensor matrix, string what, long step)
    {
        var (l, info) = linalg.cholesky_ex(matrix);
        if (info.item<int>() != 0)
            throw new NonFiniteException($"The {what} is not positive definite at step {step}; lower lr or check the log-likelihood.", step, null);
        var inverse = cholesky_inverse(l);
        return (inverse + inverse.t()) / 2;
    }
}

/// <summary>The state of the dense EKF: the mean μ and the covariance Σ [P, P].</summary>
public sealed class DenseEkfState : IAlgorithmState, IPersistentState<DenseEkfState>
{
    internal DenseEkfState(ParameterTree mean, Tensor covariance, long step, Tensor logPosterior)
    {
        Params = mean;
        Covariance = covariance;
        Step = step;
        LogPosterior = logPosterior;
    }

    /// <summary>The filtered mean μ.</summary>
    public ParameterTree Params { get; }

    /// <summary>The filtered covariance Σ over the flattened parameters.</summary>
    public Tensor Covariance { get; }

    /// <inheritdoc />
    public long Step { get; internal set; }

    /// <summary>The mean log-likelihood of the last batch at the predicted mean.</summary>
    public Tensor LogPosterior { get; internal set; }

    /// <inheritdoc />
    public static string Kind => "DenseEkf";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        record.Set("mean", Params);
        record.Set("covariance", Covariance);
        record.Set("step", Step);
        record.Set("logPosterior", LogPosterior);
    }

    /// <inheritdoc />
    public static DenseEkfState ReadFrom(StateRecord record) =>
        new(record.GetTree("mean"), record.GetTensor("covariance"), record.GetLong("step"), record.GetTensor("logPosterior"));
}

/// <summary>The dense empirical Fisher EKF. See <see cref="DenseFisher"/>.</summary>
public sealed class DenseFisher<TBatch> : ITransform<DenseEkfState, TBatch>
{
    private readonly PerDatumLogDensity<TBatch> _logLikelihood;
    private readonly Schedule _lr;
    private readonly double _transitionSd;
    private readonly double _initSd;
    private readonly nn.Module? _module;

    internal DenseFisher(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd, double initSd, nn.Module? module)
    {
        _logLikelihood = logLikelihood ?? throw new ArgumentNullException(nameof(logLikelihood));
        _lr = lr;
        _transitionSd = transitionSd;
        _initSd = initSd;
        _module = module;
    }

    /// <inheritdoc />
    public DenseEkfState Init(ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var covariance = eye(parameters.NumberOfElements, dtype: parameters.ScalarType, device: parameters.Device) * (_initSd * _initSd);
        return new DenseEkfState(parameters.Clone(), covariance, 0, TransformExtensions.NotYetEvaluated(parameters));
    }

    /// <summary>One predict–update step on <paramref name="batch"/>.</summary>
    public DenseEkfState Update(DenseEkfState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var lr = _lr.At(state.Step, "lr", positive: true);
        using var scope = NewDisposeScope();
        var factors = PerSampleGradients.Factor(_logLikelihood, state.Params, batch, null, _module);
        var b = factors.Values.shape[0];
        var value = factors.Values.mean();
        var meanGrad = factors.Sum().Multiply(1.0 / b);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, meanGrad);
        var perSample = factors.Materialize();
        var g = cat(perSample.Leaves.Select(t => t.reshape(b, -1)).ToArray(), 1);
        var fisher = g.t().mm(g) / b;
        var p = state.Covariance.shape[0];
        var predicted = state.Covariance + eye(p, dtype: fisher.dtype, device: fisher.device) * (_transitionSd * _transitionSd);
        var precision = Ekf.DenseFisher.SpdInverse(predicted, "predicted covariance", state.Step) + lr * fisher;
        var covariance = Ekf.DenseFisher.SpdInverse(precision, "updated precision", state.Step);
        var mean = state.Params.Unflatten(state.Params.Flatten().detach() + lr * covariance.mv(meanGrad.Flatten()));
        if (inplace)
        {
            state.Params.CopyFrom(mean);
            using (no_grad()) state.Covariance.copy_(covariance);
            state.LogPosterior.copy_(value);
            state.Step++;
            return state;
        }
        return new DenseEkfState(mean.Map(t => t.clone()).MoveToOuterDisposeScope(), covariance.MoveToOuterDisposeScope(), state.Step + 1,
            value.clone().MoveToOuterDisposeScope());
    }

    /// <summary>Draws from the filtered Gaussian; see <see cref="DenseFisher.Sample"/>.</summary>
    public ParameterTree Sample(DenseEkfState state, long count, long seed = 0) => Ekf.DenseFisher.Sample(state, count, seed);
}
