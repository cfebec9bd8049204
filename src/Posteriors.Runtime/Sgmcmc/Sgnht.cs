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
public sealed class SgnhtState : MomentumState, IPersistentState<SgnhtState>
{
    private SgnhtState(StateRecord fields) : base(fields) { }

    /// <summary>The thermostat ζ: a scalar tensor (a [K] tensor, one per chain, in an ensemble's stacked state).</summary>
    public Tensor Xi => Fields.GetTensor("xi");

    internal static SgnhtState New(ParameterTree parameters, ParameterTree momenta, Tensor xi, long seed)
    {
        var fields = NewFields(Kind, KindVersion, parameters, momenta, seed);
        fields.Set("xi", xi);
        return new SgnhtState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new SgnhtState(fields);

    /// <inheritdoc />
    public static string Kind => "Sgnht";

    /// <inheritdoc />
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static SgnhtState ReadFrom(StateRecord record) =>
        new(CheckedWithMomenta(record, ("xi", typeof(Tensor))));
}

/// <summary>SGNHT. See <see cref="Sgnht"/>.</summary>
public sealed class Sgnht<TBatch> : SgmcmcSampler<SgnhtState, TBatch>
{
    private readonly Schedule _lr, _temperature;
    private readonly double _alpha, _beta, _sigma, _xi;
    private readonly InitialMomenta _momenta;

    internal Sgnht(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha, double beta, double sigma,
        Schedule temperature, InitialMomenta momenta, double xi) : base(logPosterior) =>
        (_lr, _alpha, _beta, _sigma, _temperature, _momenta, _xi) = (lr, alpha, beta, sigma, temperature, momenta, xi);

    internal override SgnhtState InitChain(ParameterTree parameters, long seed, int stream)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var xi = full(Array.Empty<long>(), _xi, dtype: parameters.ScalarType, device: parameters.Device).DetachFromDisposeScope();
        return SgnhtState.New(parameters, _momenta.Create(parameters, seed, Rng, stream), xi, seed);
    }

    internal override void Move(SgnhtState chain, ParameterTree grad, long step, long seed, int stream)
    {
        var lr = _lr.At(step, "lr", positive: true);
        var temperature = _temperature.At(step, "temperature");
        var noise = SgmcmcStep.NoiseScale(temperature, lr, _alpha, _beta, step);
        var prec = 1.0 / (_sigma * _sigma);
        using (no_grad())
        {
            var kinetic = chain.Momenta.SumOf(m => m.square()) * (prec / chain.Momenta.NumberOfElements); // σ⁻² mean(m²), old m
            var decay = chain.Xi * (-lr * prec) + 1.0;                                                   // 1 − ε σ⁻² ζ, old ζ
            long offset = 0;
            for (var i = 0; i < grad.Count; offset += grad.Leaves[i].numel(), i++)
            {
                Tensor θ = chain.Params.Leaves[i], m = chain.Momenta.Leaves[i], g = grad.Leaves[i];
                θ.add_(m, alpha: lr * prec);                                      // θ' = θ + ε σ⁻² m
                m.mul_(decay).add_(g, alpha: lr);                                 // m' = m + ε g − ε σ⁻² ζ m
                if (noise > 0) m.add_(SgmcmcStep.ScaledNormalInto(g, noise, Rng, seed, step, stream, offset, chain.NoiseStream));
            }
            chain.Xi.add_((kinetic - temperature) * lr);                          // ζ' = ζ + ε (σ⁻² mean(m²) − T)
        }
    }
}
