using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// BAOA splitting of underdamped Langevin dynamics (Leimkuhler &amp; Matthews), one gradient per step, docs/ALGORITHMS.md §2.4,
/// with γ = α σ⁻²:
/// <code>
/// m ← m + ε g(θ)                                    (B)
/// θ ← θ + (ε/2) σ⁻² m                               (A)
/// m ← e^(−γε) m + sqrt(T (1 − e^(−2γε))) σ ξ        (O)
/// θ ← θ + (ε/2) σ⁻² m                               (A)
/// </code>
/// The O step is exact, so the momenta's stationary variance is σ² T whatever ε.
/// </summary>
public static class Baoa
{
    /// <summary>Builds a BAOA transform.</summary>
    /// <param name="logPosterior">The batch-normalised log posterior.</param>
    /// <param name="lr">Step size ε (positive), constant or schedule.</param>
    /// <param name="alpha">Friction α (≥ 0).</param>
    /// <param name="sigma">Momentum scale σ (&gt; 0).</param>
    /// <param name="temperature">Temperature T (≥ 0), constant or schedule.</param>
    /// <param name="momenta">Initial momenta (default: standard normal draws).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is negative or not finite.</exception>
    public static Baoa<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha = 0.01,
        double sigma = 1.0, Schedule? temperature = null, InitialMomenta? momenta = null) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)),
            (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true),
            Check.NonNegative(alpha, nameof(alpha)), Check.Positive(sigma, nameof(sigma)),
            (temperature ?? 1.0).Validated(nameof(temperature)), momenta ?? InitialMomenta.Random);
}

/// <summary>The state of <see cref="Baoa{TBatch}"/>: parameters and momenta.</summary>
public sealed class BaoaState : MomentumState, IPersistentState<BaoaState>
{
    private BaoaState(StateRecord fields) : base(fields) { }

    internal static BaoaState New(ParameterTree parameters, ParameterTree momenta, long seed) =>
        new(NewFields(Kind, KindVersion, parameters, momenta, seed));

    private protected override AlgorithmState Create(StateRecord fields) => new BaoaState(fields);

    /// <inheritdoc />
    public static string Kind => "Baoa";

    /// <inheritdoc />
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static BaoaState ReadFrom(StateRecord record) => new(CheckedWithMomenta(record));
}

/// <summary>BAOA. See <see cref="Baoa"/>.</summary>
public sealed class Baoa<TBatch> : SgmcmcSampler<BaoaState, TBatch>
{
    private readonly Schedule _lr, _temperature;
    private readonly double _alpha, _sigma;
    private readonly InitialMomenta _momenta;

    internal Baoa(LogPosterior<TBatch> logPosterior, Schedule lr, double alpha, double sigma, Schedule temperature, InitialMomenta momenta)
        : base(logPosterior) =>
        (_lr, _alpha, _sigma, _temperature, _momenta) = (lr, alpha, sigma, temperature, momenta);

    internal override BaoaState InitChain(ParameterTree parameters, long seed, int stream)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return BaoaState.New(parameters, _momenta.Create(parameters, seed, Rng, stream), seed);
    }

    internal override void Move(BaoaState chain, ParameterTree grad, long step, long seed, int stream)
    {
        var lr = _lr.At(step, "lr", positive: true);
        var temperature = _temperature.At(step, "temperature");
        var prec = 1.0 / (_sigma * _sigma);
        var gamma = _alpha * prec;
        var decay = Math.Exp(-gamma * lr);
        // −expm1 keeps 1 − e^(−2γε) accurate when γε is tiny.
        var noise = Math.Sqrt(temperature * -ExpM1(-2 * gamma * lr)) * _sigma;
        var stepNoise = Rng.Noise(chain.NoiseStream, seed, stream);
        using (no_grad())
        {
            long offset = 0;
            for (var i = 0; i < grad.Count; offset += grad.Leaves[i].numel(), i++)
            {
                Tensor θ = chain.Params.Leaves[i], m = chain.Momenta.Leaves[i], g = grad.Leaves[i];
                if (noise > 0 && FusedMoves.Fits(θ, m, g))
                {
                    FusedMoves.Baoa(θ, m, g, lr, lr / 2 * prec, decay, noise, stepNoise, step, offset);
                    continue;
                }
                m.add_(g, alpha: lr);                                                              // B
                θ.add_(m, alpha: lr / 2 * prec);                                                   // A
                m.mul_(decay);                                                                     // O
                if (noise > 0) m.add_(SgmcmcStep.ScaledNormalInto(g, noise, Rng, seed, step, stream, offset, chain.NoiseStream));
                θ.add_(m, alpha: lr / 2 * prec);                                                   // A
            }
        }
    }

    private static double ExpM1(double x) => Math.Abs(x) < 1e-5 ? x + x * x / 2 + x * x * x / 6 : Math.Exp(x) - 1;
}
