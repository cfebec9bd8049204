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
    private SgldState(StateRecord fields) : base(fields) { }

    internal static SgldState New(ParameterTree parameters, long seed) => new(NewFields(Kind, KindVersion, parameters, seed));

    private protected override AlgorithmState Create(StateRecord fields) => new SgldState(fields);

    /// <inheritdoc />
    public static string Kind => "Sgld";

    /// <inheritdoc />
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static SgldState ReadFrom(StateRecord record) => new(CheckedWithSeed(record));
}

/// <summary>SGLD. See <see cref="Sgld"/>.</summary>
public sealed class Sgld<TBatch> : SgmcmcSampler<SgldState, TBatch>
{
    private readonly Schedule _lr, _temperature;
    private readonly double _beta;

    internal Sgld(LogPosterior<TBatch> logPosterior, Schedule lr, double beta, Schedule temperature) : base(logPosterior) =>
        (_lr, _beta, _temperature) = (lr, beta, temperature);

    internal override SgldState InitChain(ParameterTree parameters, long seed, int stream)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SgldState.New(parameters, seed);
    }

    internal override void Move(SgldState chain, ParameterTree grad, long step, long seed, int stream)
    {
        var lr = _lr.At(step, "lr", positive: true);
        var noise = SgmcmcStep.NoiseScale(_temperature.At(step, "temperature"), lr, 1.0, _beta, step);
        var stepNoise = Rng.Noise(chain.NoiseStream, seed, stream);
        using (no_grad())
        {
            long offset = 0;
            for (var i = 0; i < grad.Count; offset += grad.Leaves[i].numel(), i++)
            {
                Tensor θ = chain.Params.Leaves[i], g = grad.Leaves[i];
                if (noise > 0 && FusedMoves.Fits(θ, g))
                {
                    FusedMoves.Sgld(θ, g, lr, noise, stepNoise, step, offset);
                    continue;
                }
                θ.add_(g, alpha: lr);                                                                          // θ + ε g
                if (noise > 0) θ.add_(SgmcmcStep.ScaledNormalInto(g, noise, Rng, seed, step, stream, offset, chain.NoiseStream));    //   + sqrt(Tε(2 − Tεβ)) ξ
            }
        }
    }
}
