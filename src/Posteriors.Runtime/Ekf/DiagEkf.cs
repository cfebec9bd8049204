using System.Runtime.Intrinsics;
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
public static class DiagEkf
{
    /// <summary>Builds the filter.</summary>
    /// <param name="logLikelihood">The per-datum log-likelihood log p(yᵢ | xᵢ, θ) (the prior is the initial state).</param>
    /// <param name="lr">lr &gt; 0, constant or schedule.</param>
    /// <param name="transitionSd">s ≥ 0, the standard deviation of the random-walk transition per step (default 0).</param>
    /// <param name="initSd">The initial standard deviation of every element (default 1).</param>
    /// <param name="module">The module the log-likelihood evaluates through, if any (nn.Linear fast path).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DiagEkf<TBatch> Build<TBatch>(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd = 0,
        double initSd = 1, nn.Module? module = null) =>
        new(logLikelihood, lr, transitionSd, initSd, module);

    /// <summary><paramref name="count"/> draws from N(μ, diag(σ²)), every leaf with a leading dimension <paramref name="count"/>.</summary>
    public static ParameterTree Sample(DiagEkfState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        return DiagNormal.Sample(state.Params, state.Sd, count, new Rng().For(seed, 0, state.Params.Device)).MoveToOuterDisposeScope();
    }
}

/// <summary>The state of the diagonal EKF: the mean μ (<see cref="AlgorithmState.Params"/>) and standard deviations σ.</summary>
public sealed class DiagEkfState : AlgorithmState, IPersistentState<DiagEkfState>
{
    private DiagEkfState(StateRecord fields) : base(fields) { }

    internal static DiagEkfState New(ParameterTree mean, ParameterTree sd)
    {
        var fields = NewFields(Kind, KindVersion, mean);
        fields.Set("sd", sd);
        return new DiagEkfState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new DiagEkfState(fields);

    /// <summary>The filtered standard deviations σ, shaped like μ.</summary>
    public ParameterTree Sd => Fields.GetTree("sd");

    /// <inheritdoc />
    public static string Kind => "DiagEkf";

    /// <inheritdoc />
    /// <remarks>Version 1 spelled the mean "mean" and the log density "logPosterior".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DiagEkfState ReadFrom(StateRecord record) => new(Checked(RenameVersion1Fields(record), ("sd", typeof(ParameterTree))));
}

/// <summary>The diagonal empirical Fisher EKF. See <see cref="DiagEkf"/>.</summary>
public sealed class DiagEkf<TBatch> : EkfTransform<TBatch>, ITransform<DiagEkfState, TBatch>
{
    internal DiagEkf(PerDatumLogDensity<TBatch> logLikelihood, Schedule lr, double transitionSd, double initSd, nn.Module? module)
        : base(logLikelihood, lr, transitionSd, initSd, module) { }

    /// <inheritdoc />
    public DiagEkfState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return DiagEkfState.New(parameters, parameters.Map(t => full_like(t, InitSd).detach().DetachFromDisposeScope()));
    }

    /// <summary>One predict–update step on <paramref name="batch"/>.</summary>
    public DiagEkfState Update(DiagEkfState state, TBatch batch, bool inplace = false)
    {
        using var scope = NewDisposeScope();
        var (lr, factors, b, value, meanGrad) = Observe(state, batch);
        var sumOfSquares = factors.SumOfSquares();
        var next = AlgorithmState.Target(state, inplace);
        using (no_grad())
            for (var i = 0; i < meanGrad.Count; i++)
                UpdateRule(next.Params.Leaves[i], next.Sd.Leaves[i], meanGrad.Leaves[i], sumOfSquares.Leaves[i], lr, 1.0 / b, TransitionSd);
        return AlgorithmState.Finish(next, value, factors.Aux);
    }

    /// <summary>
    /// The rule for one leaf, in place: σ²_pred = σ² + s², prec' = 1/σ²_pred + lr · Σᵢ gᵢ² / B, μ' = μ + lr ḡ / prec',
    /// σ' = prec'^(−1/2). On contiguous CPU float32/float64 leaves it is one pass over the storage; elsewhere tensor operations.
    /// </summary>
    private static void UpdateRule(Tensor mean, Tensor sd, Tensor meanGrad, Tensor sumOfSquares, double lr, double perDatum, double transitionSd)
    {
        var leaves = new[] { mean, sd, meanGrad, sumOfSquares };
        if (leaves.All(t => t.device_type == DeviceType.CPU && t.is_contiguous() && t.dtype == mean.dtype && t.numel() * t.element_size() <= int.MaxValue))
        {
            if (mean.dtype == ScalarType.Float64)
            {
                Fused(Storage<double>(mean), Storage<double>(sd), Storage<double>(meanGrad), Storage<double>(sumOfSquares), lr, lr * perDatum, transitionSd * transitionSd);
                return;
            }
            if (mean.dtype == ScalarType.Float32)
            {
                Fused(Storage<float>(mean), Storage<float>(sd), Storage<float>(meanGrad), Storage<float>(sumOfSquares), (float)lr, (float)(lr * perDatum),
                    (float)(transitionSd * transitionSd));
                return;
            }
        }
        var predictedVariance = sd.square() + transitionSd * transitionSd;
        var precision = predictedVariance.reciprocal() + lr * perDatum * sumOfSquares;
        var variance = precision.reciprocal();
        mean.add_(lr * variance * meanGrad);
        sd.copy_(variance.sqrt());
    }

    private static void Fused<T>(Span<T> mean, Span<T> sd, ReadOnlySpan<T> meanGrad, ReadOnlySpan<T> sumOfSquares, T lr, T lrPerDatum, T transitionVariance)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        // The vector body and the scalar tail evaluate the same expressions in the same order.
        var i = 0;
        for (; i <= mean.Length - Vector512<T>.Count; i += Vector512<T>.Count)
        {
            var s = Vector512.Create<T>(sd[i..]);
            var variance = Vector512<T>.One / (Vector512<T>.One / (s * s + Vector512.Create(transitionVariance)) + Vector512.Create<T>(sumOfSquares[i..]) * lrPerDatum);
            (Vector512.Create<T>(mean[i..]) + variance * lr * Vector512.Create<T>(meanGrad[i..])).CopyTo(mean[i..]);
            Vector512.Sqrt(variance).CopyTo(sd[i..]);
        }
        for (; i < mean.Length; i++)
        {
            var variance = T.One / (T.One / (sd[i] * sd[i] + transitionVariance) + sumOfSquares[i] * lrPerDatum);
            mean[i] += variance * lr * meanGrad[i];
            sd[i] = T.Sqrt(variance);
        }
    }

    private static Span<T> Storage<T>(Tensor t) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(t.bytes);

    /// <summary>Draws from the filtered Gaussian; see <see cref="DiagEkf.Sample"/>.</summary>
    public ParameterTree Sample(DiagEkfState state, long count, long seed = 0) => DiagEkf.Sample(state, count, seed);
}
