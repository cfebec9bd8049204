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
    internal SglrwState(ParameterTree parameters, long step, Tensor logPosterior, long seed)
        : base(parameters, step, logPosterior, seed) { }

    internal override IEnumerable<Tensor> Tensors => Params.Leaves;

    internal SglrwState Copy() => new(SgmcmcStep.Own(Params), Step, SgmcmcStep.Own(LogPosterior), Seed);

    /// <inheritdoc />
    public static string Kind => "Sglrw";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record) => WriteCommon(record);

    /// <inheritdoc />
    public static SglrwState ReadFrom(StateRecord record)
    {
        var (p, step, lp, seed) = ReadCommon(record);
        return new SglrwState(p, step, lp, seed);
    }
}

/// <summary>SGLRW. See <see cref="Sglrw"/>.</summary>
public sealed class Sglrw<TBatch> : ITransform<SglrwState, TBatch>
{
    private readonly LogPosterior<TBatch> _logPosterior;
    private readonly Schedule _lr, _temperature;
    private readonly Rng _rng = new();

    internal Sglrw(LogPosterior<TBatch> logPosterior, Schedule lr, Schedule temperature) =>
        (_logPosterior, _lr, _temperature) = (logPosterior, lr, temperature);

    /// <inheritdoc />
    public SglrwState Init(ParameterTree parameters) => Init(parameters, seed: 0);

    /// <summary>A fresh state at <paramref name="parameters"/> whose moves come from the stream of <paramref name="seed"/>.</summary>
    public SglrwState Init(ParameterTree parameters, long seed)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return new SglrwState(SgmcmcStep.Own(parameters), 0, TransformExtensions.NotYetEvaluated(parameters).DetachFromDisposeScope(), seed);
    }

    /// <inheritdoc />
    public SglrwState Update(SglrwState state, TBatch batch, bool inplace = false)
    {
        var next = SgmcmcStep.Target(state, inplace, s => s.Copy());
        using var scope = NewDisposeScope();
        var (value, _, grad) = SgmcmcStep.Gradient(_logPosterior, state, batch);
        var lr = _lr.At(state.Step, "lr", positive: true);
        var delta = Math.Sqrt(2 * _temperature.At(state.Step, "temperature", positive: true) * lr);
        var generator = _rng.For(state.Seed, state.Step, state.Params.Device);
        using (no_grad())
        {
            for (var i = 0; i < grad.Count; i++)
            {
                var θ = next.Params.Leaves[i];
                var drift = grad.Leaves[i] * (lr / delta);                                  // ε g / δ
                var up = drift.add(1.0).mul_(0.5).clamp_(0.0, 1.0);                         // p₊
                var down = drift.neg().add_(1.0).mul_(0.5).clamp_(0.0, 1.0);                 // p₋
                var u = rand(θ.shape, dtype: θ.dtype, device: θ.device, generator: generator);
                // +δ when u < p₊, −δ when u ≥ 1 − p₋, 0 in between (p₀).
                var move = u.lt(up).to_type(θ.dtype).sub_(u.ge(down.neg().add_(1.0)).to_type(θ.dtype));
                θ.add_(move, alpha: delta);
            }
        }
        return SgmcmcStep.Finish(next, value);
    }
}
