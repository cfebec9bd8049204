using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Ekf;

/// <summary>
/// An extended Kalman filter over the parameters with a diagonal empirical Fisher (docs/ALGORITHMS.md §5), for online
/// learning: per batch, with transition noise s,
/// σ²_pred = σ² + s², prec' = 1/σ²_pred + lr · meanᵢ (∇ log pᵢ)², μ' = μ + lr · σ'² · meanᵢ ∇ log pᵢ.
/// The precision increases with data; lr acts as the likelihood's inverse temperature.
/// </summary>
public static class DiagFisher
{
    /// <summary>Builds the filter.</summary>
    /// <param name="logLikelihood">The per-datum log-likelihood log p(yᵢ | xᵢ, θ) (the prior is the initial state).</param>
    /// <param name="lr">lr &gt; 0, constant or schedule.</param>
    /// <param name="transitionSd">s ≥ 0, the standard deviation of the random-walk transition per step (default 0).</param>
    /// <param name="initSd">The initial standard deviation of every element (default 1).</param>
    /// <param name="module">The module the log-likelihood evaluates through, if any (nn.Linear fast path).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DiagFisher<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd = 0,
        double initSd = 1, nn.Module? module = null)
    {
        ArgumentNullException.ThrowIfNull(lr);
        return new(logLikelihood, lr.Validated(nameof(lr), positive: true), Check.NonNegative(transitionSd, nameof(transitionSd)),
            Check.Positive(initSd, nameof(initSd)), module);
    }

    /// <summary><paramref name="count"/> draws from N(μ, diag(σ²)), every leaf with a leading dimension <paramref name="count"/>.</summary>
    public static ParameterTree Sample(DiagEkfState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        return DiagNormal.Sample(state.Params, state.Sd, count, new Rng().For(seed, 0, state.Params.Device)).MoveToOuterDisposeScope();
    }

    /// <summary>The rule for one leaf: returns (μ', σ').</summary>
    internal static (Tensor Mean, Tensor Sd) UpdateRule(Tensor mean, Tensor sd, Tensor meanGrad, Tensor meanSquaredGrad, double lr, double transitionSd)
    {
        var predictedVariance = sd.square() + transitionSd * transitionSd;
        var precision = predictedVariance.reciprocal() + lr * meanSquaredGrad;
        var variance = precision.reciprocal();
        return (mean + lr * variance * meanGrad, variance.sqrt());
    }
}

/// <summary>The state of the diagonal EKF: the mean μ and standard deviations σ.</summary>
public sealed class DiagEkfState : IAlgorithmState, IPersistentState<DiagEkfState>
{
    internal DiagEkfState(ParameterTree mean, ParameterTree sd, long step, Tensor logPosterior)
    {
        Params = mean;
        Sd = sd;
        Step = step;
        LogPosterior = logPosterior;
    }

    /// <summary>The filtered mean μ.</summary>
    public ParameterTree Params { get; }

    /// <summary>The filtered standard deviations σ, shaped like μ.</summary>
    public ParameterTree Sd { get; }

    /// <inheritdoc />
    public long Step { get; internal set; }

    /// <summary>The mean log-likelihood of the last batch at the predicted mean.</summary>
    public Tensor LogPosterior { get; internal set; }

    /// <inheritdoc />
    public static string Kind => "DiagEkf";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        record.Set("mean", Params);
        record.Set("sd", Sd);
        record.Set("step", Step);
        record.Set("logPosterior", LogPosterior);
    }

    /// <inheritdoc />
    public static DiagEkfState ReadFrom(StateRecord record) =>
        new(record.GetTree("mean"), record.GetTree("sd"), record.GetLong("step"), record.GetTensor("logPosterior"));
}

/// <summary>The diagonal empirical Fisher EKF. See <see cref="DiagFisher"/>.</summary>
public sealed class DiagFisher<TBatch> : ITransform<DiagEkfState, TBatch>
{
    private readonly PerDatumLogDensity<TBatch> _logLikelihood;
    private readonly Schedule _lr;
    private readonly double _transitionSd;
    private readonly double _initSd;
    private readonly nn.Module? _module;

    internal DiagFisher(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd, double initSd, nn.Module? module)
    {
        _logLikelihood = logLikelihood ?? throw new ArgumentNullException(nameof(logLikelihood));
        _lr = lr;
        _transitionSd = transitionSd;
        _initSd = initSd;
        _module = module;
    }

    /// <inheritdoc />
    public DiagEkfState Init(ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return new DiagEkfState(parameters.Clone(), parameters.Map(t => full_like(t, _initSd).detach()), 0, TransformExtensions.NotYetEvaluated(parameters));
    }

    /// <summary>One predict–update step on <paramref name="batch"/>.</summary>
    public DiagEkfState Update(DiagEkfState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var lr = _lr.At(state.Step, "lr", positive: true);
        using var scope = NewDisposeScope();
        var factors = PerSampleGradients.Factor(_logLikelihood, state.Params, batch, null, _module);
        var b = factors.Values.shape[0];
        var value = factors.Values.mean();
        var meanGrad = factors.Sum().Multiply(1.0 / b);
        NonFiniteException.ThrowIfNotFinite(state.Step, value, meanGrad);
        var meanSquared = factors.SumOfSquares().Multiply(1.0 / b);
        var means = new Tensor[state.Params.Count];
        var sds = new Tensor[state.Params.Count];
        for (var i = 0; i < means.Length; i++)
            (means[i], sds[i]) = Ekf.DiagFisher.UpdateRule(state.Params.Leaves[i].detach(), state.Sd.Leaves[i], meanGrad.Leaves[i], meanSquared.Leaves[i], lr, _transitionSd);
        var mean = new ParameterTree(state.Params.Names.Select((n, i) => new KeyValuePair<string, Tensor>(n, means[i])));
        var sd = new ParameterTree(state.Params.Names.Select((n, i) => new KeyValuePair<string, Tensor>(n, sds[i])));
        if (inplace)
        {
            state.Params.CopyFrom(mean);
            state.Sd.CopyFrom(sd);
            state.LogPosterior.copy_(value);
            state.Step++;
            return state;
        }
        return new DiagEkfState(mean.MoveToOuterDisposeScope(), sd.MoveToOuterDisposeScope(), state.Step + 1, value.clone().MoveToOuterDisposeScope());
    }

    /// <summary>Draws from the filtered Gaussian; see <see cref="DiagFisher.Sample"/>.</summary>
    public ParameterTree Sample(DiagEkfState state, long count, long seed = 0) => Ekf.DiagFisher.Sample(state, count, seed);
}
