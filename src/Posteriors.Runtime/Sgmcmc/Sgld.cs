using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// Stochastic-gradient Langevin dynamics (Welling &amp; Teh, 2011), docs/ALGORITHMS.md §2.1:
/// <code>θ' = θ + ε g + sqrt(T ε (2 − T ε β)) ξ</code>
/// At T = 0 it is plain gradient ascent.
/// </summary>
public static class Sgld
{
    /// <summary>Builds an SGLD transform.</summary>
    /// <param name="logPosterior">The batch-normalised log posterior.</param>
    /// <param name="lr">Step size ε (positive), constant or schedule.</param>
    /// <param name="beta">Gradient-noise correction β (≥ 0).</param>
    /// <param name="temperature">Temperature T (≥ 0), constant or schedule.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is negative or not finite.</exception>
    public static Sgld<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Schedule lr, double beta = 0.0,
        Schedule? temperature = null) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)),
            (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true),
            Check.NonNegative(beta, nameof(beta)), (temperature ?? 1.0).Validated(nameof(temperature)));
}

/// <summary>The state of <see cref="Sgld{TBatch}"/>: the parameters only.</summary>
public sealed class SgldState : SgmcmcState, IPersistentState<SgldState>
{
    internal SgldState(ParameterTree parameters, long step, Tensor logPosterior, long seed)
        : base(parameters, step, logPosterior, seed) { }

    internal override IEnumerable<Tensor> Tensors => Params.Leaves;

    internal SgldState Copy() => new(SgmcmcStep.Own(Params), Step, SgmcmcStep.Own(LogPosterior), Seed);

    /// <inheritdoc />
    public static string Kind => "Sgld";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record) => WriteCommon(record);

    /// <inheritdoc />
    public static SgldState ReadFrom(StateRecord record)
    {
        var (p, step, lp, seed) = ReadCommon(record);
        return new SgldState(p, step, lp, seed);
    }
}

/// <summary>SGLD. See <see cref="Sgld"/>.</summary>
public sealed class Sgld<TBatch> : ITransform<SgldState, TBatch>
{
    private readonly LogPosterior<TBatch> _logPosterior;
    private readonly Schedule _lr, _temperature;
    private readonly double _beta;
    private readonly Rng _rng = new();

    internal Sgld(LogPosterior<TBatch> logPosterior, Schedule lr, double beta, Schedule temperature) =>
        (_logPosterior, _lr, _beta, _temperature) = (logPosterior, lr, beta, temperature);

    /// <inheritdoc />
    public SgldState Init(ParameterTree parameters) => Init(parameters, seed: 0);

    /// <summary>A fresh state at <paramref name="parameters"/> whose noise comes from the stream of <paramref name="seed"/>.</summary>
    public SgldState Init(ParameterTree parameters, long seed)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return new SgldState(SgmcmcStep.Own(parameters), 0, TransformExtensions.NotYetEvaluated(parameters).DetachFromDisposeScope(), seed);
    }

    /// <inheritdoc />
    public SgldState Update(SgldState state, TBatch batch, bool inplace = false)
    {
        var next = SgmcmcStep.Target(state, inplace, s => s.Copy());
        using var scope = NewDisposeScope();
        var (value, _, grad) = SgmcmcStep.Gradient(_logPosterior, state, batch);
        var lr = _lr.At(state.Step, "lr", positive: true);
        var noise = SgmcmcStep.NoiseScale(_temperature.At(state.Step, "temperature"), lr, 1.0, _beta, state.Step);
        var generator = noise > 0 ? _rng.For(state.Seed, state.Step, state.Params.Device) : null;
        using (no_grad())
        {
            for (var i = 0; i < grad.Count; i++)
            {
                var θ = next.Params.Leaves[i];
                θ.add_(grad.Leaves[i], alpha: lr);                                                   // θ + ε g
                if (generator is not null) θ.add_(SgmcmcStep.Normal(θ, generator), alpha: noise);    //   + sqrt(Tε(2 − Tεβ)) ξ
            }
        }
        return SgmcmcStep.Finish(next, value);
    }
}
