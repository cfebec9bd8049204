using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// Stochastic-gradient lattice random walk, docs/ALGORITHMS.md §2.5: a discretisation of overdamped Langevin dynamics in which
/// every element moves by +δ, −δ or 0, with δ = sqrt(2 T ε) and
/// <code>
/// p₊ = clamp((1 + ε g / δ) / 2, 0, 1),   p₋ = clamp((1 − ε g / δ) / 2, 0, 1),   p₀ = 1 − p₊ − p₋
/// </code>
/// so the mean move is ε g (while |ε g| ≤ δ) and its variance ≈ 2 T ε, as for SGLD. One uniform draw per element.
/// Undefined at T = 0 (the lattice collapses): a zero temperature is rejected.
/// </summary>
public static class Sglrw
{
    /// <summary>Builds an SGLRW transform.</summary>
    /// <param name="logPosterior">The batch-normalised log posterior.</param>
    /// <param name="lr">Step size ε (positive), constant or schedule.</param>
    /// <param name="temperature">Temperature T (&gt; 0), constant or schedule.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is not positive and finite (T = 0 included).</exception>
    public static Sglrw<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Schedule lr, Schedule? temperature = null) =>
        new(logPosterior ?? throw new ArgumentNullException(nameof(logPosterior)),
            (lr ?? throw new ArgumentNullException(nameof(lr))).Validated(nameof(lr), positive: true),
            (temperature ?? 1.0).Validated(nameof(temperature), positive: true));
}

/// <summary>The state of <see cref="Sglrw{TBatch}"/>: the parameters only.</summary>
public sealed class SglrwState : SgmcmcState, IPersistentState<SglrwState>
{
    private SglrwState(StateRecord fields) : base(fields) { }

    internal static SglrwState New(ParameterTree parameters, long seed) => new(NewFields(Kind, KindVersion, parameters, seed));

    private protected override AlgorithmState Create(StateRecord fields) => new SglrwState(fields);

    /// <inheritdoc />
    public static string Kind => "Sglrw";

    /// <inheritdoc />
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static SglrwState ReadFrom(StateRecord record) => new(CheckedWithSeed(record));
}

/// <summary>SGLRW. See <see cref="Sglrw"/>.</summary>
public sealed class Sglrw<TBatch> : SgmcmcSampler<SglrwState, TBatch>
{
    private readonly Schedule _lr, _temperature;

    internal Sglrw(LogPosterior<TBatch> logPosterior, Schedule lr, Schedule temperature) : base(logPosterior) =>
        (_lr, _temperature) = (lr, temperature);

    internal override SglrwState InitChain(ParameterTree parameters, long seed, int stream)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SglrwState.New(parameters, seed);
    }

    internal override void Move(SglrwState chain, ParameterTree grad, long step, long seed, int stream)
    {
        var lr = _lr.At(step, "lr", positive: true);
        var delta = Math.Sqrt(2 * _temperature.At(step, "temperature", positive: true) * lr);
        var generator = Rng.For(seed, step, chain.Params.Device, stream);
        using (no_grad())
        {
            for (var i = 0; i < grad.Count; i++)
            {
                var θ = chain.Params.Leaves[i];
                var drift = grad.Leaves[i] * (lr / delta);                                  // ε g / δ
                var up = drift.add(1.0).mul_(0.5).clamp_(0.0, 1.0);                         // p₊
                var down = drift.neg().add_(1.0).mul_(0.5).clamp_(0.0, 1.0);                 // p₋
                var u = rand(θ.shape, dtype: θ.dtype, device: θ.device, generator: generator);
                // +δ when u < p₊, −δ when u ≥ 1 − p₋, 0 in between (p₀).
                var move = u.lt(up).to_type(θ.dtype).sub_(u.ge(down.neg().add_(1.0)).to_type(θ.dtype));
                θ.add_(move, alpha: delta);
            }
        }
    }
}
