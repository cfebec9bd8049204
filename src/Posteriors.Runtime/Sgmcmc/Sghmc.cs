using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// Stochastic-gradient Hamiltonian Monte Carlo (Chen et al., 2014), docs/ALGORITHMS.md §2.2:
/// <code>
/// θ' = θ + ε σ⁻² m
/// m' = m + ε g − ε σ⁻² α m + sqrt(T ε (2α − T ε β)) ξ
/// </code>
/// targeting exp((log π(θ) − m·m/(2σ²)) / T). At T = 0 it is heavy-ball SGD; with T = 1/N it samples the posterior.
/// </summary>
public static class Sghmc
{
    /// <summary>Builds an SGHMC transform.</summary>
    /// <param name="logPosterior">The batch-normalised log posterior.</param>
    /// <param name="lr">Step size ε (positive), constant or schedule.</param>
    /// <param name="alpha">Friction α (≥ 0).</param>
    /// <param name="beta">Gradient-noise correction β (≥ 0).</param>
    /// <param name="sigma">Momentum scale σ (&gt; 0): the momenta's stationary standard deviation at T = 1.</param>
    /// <param name="temperature">Temperature T (≥ 0), constant or schedule; 0 is optimisation.</param>
    /// <param name="momenta">Initial momenta (default: standard normal draws).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is negative or not finite.</exception>
    public static Sghmc<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha = 0.01,
        double beta = 0.0, double sigma = 1.0, Schedule? temperature = null, InitialMomenta? momenta = null) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)),
            (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true),
            Check.NonNegative(alpha, nameof(alpha)), Check.NonNegative(beta, nameof(beta)), Check.Positive(sigma, nameof(sigma)),
            (temperature ?? 1.0).Validated(nameof(temperature)), momenta ?? InitialMomenta.Random);
}

/// <summary>The state of <see cref="Sghmc{TBatch}"/>: parameters and momenta.</summary>
public sealed class SghmcState : MomentumState, IPersistentState<SghmcState>
{
    private SghmcState(StateRecord fields) : base(fields) { }

    internal static SghmcState New(ParameterTree parameters, ParameterTree momenta, long seed) =>
        new(NewFields(Kind, KindVersion, parameters, momenta, seed));

    private protected override AlgorithmState Create(StateRecord fields) => new SghmcState(fields);

    /// <inheritdoc />
    public static string Kind => "Sghmc";

    /// <inheritdoc />
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static SghmcState ReadFrom(StateRecord record) => new(CheckedWithMomenta(record));
}

/// <summary>SGHMC. See <see cref="Sghmc"/>.</summary>
public sealed class Sghmc<TBatch> : SgmcmcSampler<SghmcState, TBatch>
{
    private readonly Schedule _lr, _temperature;
    private readonly double _alpha, _beta, _sigma;
    private readonly InitialMomenta _momenta;

    internal Sghmc(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha, double beta, double sigma,
        Schedule temperature, InitialMomenta momenta) : base(logPosterior) =>
        (_lr, _alpha, _beta, _sigma, _temperature, _momenta) = (lr, alpha, beta, sigma, temperature, momenta);

    internal override SghmcState InitChain(ParameterTree parameters, long seed, int stream)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SghmcState.New(parameters, _momenta.Create(parameters, seed, Rng, stream), seed);
    }

    internal override void Move(SghmcState chain, ParameterTree grad, long step, long seed, int stream)
    {
        var lr = _lr.At(step, "lr", positive: true);
        var temperature = _temperature.At(step, "temperature");
        var noise = SgmcmcStep.NoiseScale(temperature, lr, _alpha, _beta, step);
        var prec = 1.0 / (_sigma * _sigma);
        var stepNoise = Rng.Noise(chain.NoiseStream, seed, stream);
        using (no_grad())
        {
            long offset = 0;
            for (var i = 0; i < grad.Count; offset += grad.Leaves[i].numel(), i++)
            {
                Tensor θ = chain.Params.Leaves[i], m = chain.Momenta.Leaves[i], g = grad.Leaves[i];
                if (noise > 0 && FusedMoves.Fits(θ, m, g))
                {
                    FusedMoves.Sghmc(θ, m, g, lr * prec, 1 - lr * prec * _alpha, lr, noise, stepNoise, step, offset);
                    continue;
                }
                θ.add_(m, alpha: lr * prec);                             // θ' = θ + ε σ⁻² m   (old m)
                m.mul_(1 - lr * prec * _alpha).add_(g, alpha: lr);       // m' = m + ε g − ε σ⁻² α m
                if (noise > 0) m.add_(SgmcmcStep.ScaledNormalInto(g, noise, Rng, seed, step, stream, offset, chain.NoiseStream));  //  + sqrt(Tε(2α − Tεβ)) ξ
            }
        }
    }
}
