using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// Stochastic-gradient Nosé–Hoover thermostat (Ding et al., 2014), docs/ALGORITHMS.md §2.3. Right-hand sides use old values:
/// <code>
/// θ' = θ + ε σ⁻² m
/// m' = m + ε g − ε σ⁻² ζ m + sqrt(T ε (2α − T ε β)) ξ
/// ζ' = ζ + ε (σ⁻² mean(m²) − T)
/// </code>
/// The thermostat ζ adapts the friction until the kinetic temperature σ⁻² mean(m²) equals T.
/// </summary>
public static class Sgnht
{
    /// <summary>Builds an SGNHT transform.</summary>
    /// <param name="logPosterior">The batch-normalised log posterior.</param>
    /// <param name="lr">Step size ε (positive), constant or schedule.</param>
    /// <param name="alpha">Friction α of the injected noise (≥ 0).</param>
    /// <param name="beta">Gradient-noise correction β (≥ 0).</param>
    /// <param name="sigma">Momentum scale σ (&gt; 0).</param>
    /// <param name="temperature">Temperature T (≥ 0), constant or schedule.</param>
    /// <param name="momenta">Initial momenta (default: standard normal draws).</param>
    /// <param name="xi">Initial thermostat ζ (finite); defaults to <paramref name="alpha"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is negative or not finite.</exception>
    public static Sgnht<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha = 0.01,
        double beta = 0.0, double sigma = 1.0, Schedule? temperature = null, InitialMomenta? momenta = null, double? xi = null) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)),
            (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true),
            Check.NonNegative(alpha, nameof(alpha)), Check.NonNegative(beta, nameof(beta)), Check.Positive(sigma, nameof(sigma)),
            (temperature ?? 1.0).Validated(nameof(temperature)), momenta ?? InitialMomenta.Random,
            Check.Finite(xi ?? alpha, nameof(xi)));
}

/// <summary>The state of <see cref="Sgnht{TBatch}"/>: parameters, momenta and the thermostat.</summary>
public sealed class SgnhtState : SgmcmcState, IPersistentState<SgnhtState>
{
    internal SgnhtState(ParameterTree parameters, ParameterTree momenta, Tensor xi, long step, Tensor logPosterior, long seed)
        : base(parameters, step, logPosterior, seed) => (Momenta, Xi) = (momenta, xi);

    /// <summary>The momenta m, shaped like the parameters.</summary>
    public ParameterTree Momenta { get; }

    /// <summary>The thermostat ζ (a scalar tensor).</summary>
    public Tensor Xi { get; }

    internal override IEnumerable<Tensor> Tensors => Params.Leaves.Concat(Momenta.Leaves).Append(Xi);

    internal SgnhtState Copy() =>
        new(SgmcmcStep.Own(Params), SgmcmcStep.Own(Momenta), SgmcmcStep.Own(Xi), Step, SgmcmcStep.Own(LogPosterior), Seed);

    /// <inheritdoc />
    public static string Kind => "Sgnht";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        WriteCommon(record);
        record.Set("momenta", Momenta);
        record.Set("xi", Xi);
    }

    /// <inheritdoc />
    public static SgnhtState ReadFrom(StateRecord record)
    {
        var (p, step, lp, seed) = ReadCommon(record);
        return new SgnhtState(p, record.GetTree("momenta"), record.GetTensor("xi"), step, lp, seed);
    }
}

/// <summary>SGNHT. See <see cref="Sgnht"/>.</summary>
public sealed class Sgnht<TBatch> : ITransform<SgnhtState, TBatch>
{
    private readonly LogPosterior<TBatch> _logPosterior;
    private readonly Schedule _lr, _temperature;
    private readonly double _alpha, _beta, _sigma, _xi;
    private readonly InitialMomenta _momenta;
    private readonly Rng _rng = new();

    internal Sgnht(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha, double beta, double sigma,
        Schedule temperature, InitialMomenta momenta, double xi) =>
        (_logPosterior, _lr, _alpha, _beta, _sigma, _temperature, _momenta, _xi) = (logPosterior, lr, alpha, beta, sigma, temperature, momenta, xi);

    /// <inheritdoc />
    public SgnhtState Init(ParameterTree parameters) => Init(parameters, seed: 0);

    /// <summary>A fresh state at <paramref name="parameters"/> whose noise comes from the stream of <paramref name="seed"/>.</summary>
    public SgnhtState Init(ParameterTree parameters, long seed)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var xi = full(Array.Empty<long>(), _xi, dtype: parameters.ScalarType, device: parameters.Device).DetachFromDisposeScope();
        return new SgnhtState(SgmcmcStep.Own(parameters), _momenta.Create(parameters, seed, _rng), xi, 0,
            TransformExtensions.NotYetEvaluated(parameters).DetachFromDisposeScope(), seed);
    }

    /// <inheritdoc />
    public SgnhtState Update(SgnhtState state, TBatch batch, bool inplace = false)
    {
        var next = SgmcmcStep.Target(state, inplace, s => s.Copy());
        using var scope = NewDisposeScope();
        var (value, _, grad) = SgmcmcStep.Gradient(_logPosterior, state, batch);
        var lr = _lr.At(state.Step, "lr", positive: true);
        var temperature = _temperature.At(state.Step, "temperature");
        var noise = SgmcmcStep.NoiseScale(temperature, lr, _alpha, _beta, state.Step);
        var prec = 1.0 / (_sigma * _sigma);
        var generator = noise > 0 ? _rng.For(state.Seed, state.Step, state.Params.Device) : null;
        using (no_grad())
        {
            var kinetic = next.Momenta.SumOf(m => m.square()) * (prec / next.Momenta.NumberOfElements); // σ⁻² mean(m²), old m
            var decay = next.Xi * (-lr * prec) + 1.0;                                                  // 1 − ε σ⁻² ζ, old ζ
            for (var i = 0; i < grad.Count; i++)
            {
                Tensor θ = next.Params.Leaves[i], m = next.Momenta.Leaves[i];
                θ.add_(m, alpha: lr * prec);                                      // θ' = θ + ε σ⁻² m
                m.mul_(decay).add_(grad.Leaves[i], alpha: lr);                    // m' = m + ε g − ε σ⁻² ζ m
                if (generator is not null) m.add_(SgmcmcStep.Normal(m, generator), alpha: noise);
            }
            next.Xi.add_((kinetic - temperature) * lr);                           // ζ' = ζ + ε (σ⁻² mean(m²) − T)
        }
        return SgmcmcStep.Finish(next, value);
    }
}
