using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using Posteriors.Optim;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// Variational inference with a diagonal Gaussian q = N(μ, diag(σ²)) (docs/ALGORITHMS.md §3): an
/// <see cref="Optimizer"/> (SGD or Adam, moments kept in the state) minimises
/// NELBO = −mean_s [log π(θ_s) − T log q(θ_s)], θ_s = μ + σ ξ_s, over μ and log σ.
/// </summary>
/// <remarks>
/// Gradients come from one ∇θ log π(θ_s) per sample by the chain rule (∂θ/∂μ = I, ∂θ/∂log σ = σ ξ), so a model that
/// evaluates through a TorchSharp module (<see cref="ModuleBinding"/>) works unchanged. The entropy term is analytic:
/// with sticking the landing (default) only its path derivative is kept (−ξ/σ for μ, −ξ² for log σ), whose variance
/// vanishes as q approaches the target; without it, the exact total derivative (0 for μ, −1 for log σ).
/// </remarks>
public static class DiagVi
{
    /// <summary>Builds the transform.</summary>
    /// <param name="logPosterior">log π(θ; batch), batch-normalised.</param>
    /// <param name="optimizer">The optimizer over μ and log σ, e.g. <c>Optimizer.Adam(lr: 1e-2)</c>.</param>
    /// <param name="temperature">T on the entropy term (constant or schedule, ≥ 0; default 1). T = 0 is MAP with noise.</param>
    /// <param name="initLogSd">The initial log σ of every element (default 0; the cold-posterior study used −3).</param>
    /// <param name="samples">S, Monte Carlo samples per step (default 1).</param>
    /// <param name="stickingTheLanding">Drop the score part of the entropy gradient (default on).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DiagVi<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Optimizer optimizer,
        Schedule? temperature = null, double initLogSd = 0, int samples = 1, bool stickingTheLanding = true) =>
        new(logPosterior, optimizer, temperature, initLogSd, samples, stickingTheLanding);

    /// <summary>σ = exp(log σ) of a state.</summary>
    public static ParameterTree Sd(DiagViState state) =>
        (state ?? throw new ArgumentNullException(nameof(state))).LogSd.Map(t => t.detach().exp());

    /// <summary>
    /// The NELBO of q = N(<paramref name="mean"/>, diag(exp(<paramref name="logSd"/>)²)) on a batch, estimated with
    /// <paramref name="samples"/> draws seeded by <paramref name="seed"/> (a detached scalar).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static Tensor Nelbo<TBatch>(LogPosterior<TBatch> logPosterior, ParameterTree mean, ParameterTree logSd, TBatch batch,
        int samples = 1, long seed = 0, double temperature = 1)
    {
        ArgumentNullException.ThrowIfNull(logPosterior);
        ArgumentNullException.ThrowIfNull(mean);
        mean.EnsureSameStructure(logSd, nameof(logSd));
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "The number of Monte Carlo samples must be positive.");
        Check.NonNegative(temperature, nameof(temperature));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var sd = logSd.Map(t => t.detach().exp());
        var generator = new Rng().For(seed, 0, mean.Device);
        Tensor total = zeros(Array.Empty<long>(), dtype: mean.ScalarType, device: mean.Device);
        for (var s = 0; s < samples; s++)
        {
            var theta = DiagNormal.Sample(mean.Detach(), sd, generator);
            var logQ = DiagNormal.LogProb(theta, mean.Detach(), sd);
            total = total + logPosterior(theta, batch).Differentiable("Diagonal VI").Value.reshape(Array.Empty<long>()) - temperature * logQ;
        }
        return (-total / samples).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <paramref name="count"/> draws from q: every leaf gets a leading dimension <paramref name="count"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
    public static ParameterTree Sample(DiagViState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var scope = NewDisposeScope();
        var generator = new Rng().For(seed, 0, state.Params.Device);
        return DiagNormal.Sample(state.Params.Detach(), Sd(state), count, generator).MoveToOuterDisposeScope();
    }
}

/// <summary>The state of <see cref="DiagVi{TBatch}"/>: μ, log σ, the optimizer's moments, the step and the seed.</summary>
public sealed class DiagViState : ViState, IPersistentState<DiagViState>
{
    private DiagViState(StateRecord fields) : base(fields) { }

    internal static DiagViState New(ParameterTree mean, ParameterTree logSd, long seed, Optimizer optimizer) =>
        new(NewFields(Kind, KindVersion, mean, seed, optimizer, "log_sd", logSd));

    private protected override AlgorithmState Create(StateRecord fields) => new DiagViState(fields);

    /// <summary>log σ, shaped like μ.</summary>
    public ParameterTree LogSd => Fields.GetTree("log_sd");

    /// <inheritdoc />
    public static string Kind => "DiagVi";

    /// <inheritdoc />
    /// <remarks>Version 1 kept a live TorchSharp optimizer (saved as its bytes) and spelled μ "mean", log σ "logSd".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DiagViState ReadFrom(StateRecord record) => new(Upgrade(record, "log_sd", typeof(ParameterTree)));
}

/// <summary>Diagonal Gaussian VI. See <see cref="DiagVi"/>.</summary>
public sealed class DiagVi<TBatch> : ViTransform<DiagViState, TBatch>, ITransform<DiagViState, TBatch>
{
    internal DiagVi(LogPosterior<TBatch> logPosterior, Optimizer optimizer, Schedule? temperature, double initLogSd, int samples, bool stickingTheLanding)
        : base(logPosterior, optimizer, temperature, initLogSd, samples, stickingTheLanding) { }

    /// <summary>A fresh state with μ = <paramref name="parameters"/>, log σ = initLogSd and noise seed <paramref name="seed"/>.</summary>
    public DiagViState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return DiagViState.New(parameters, parameters.Map(t => full_like(t, InitLogSd).detach().DetachFromDisposeScope()), seed, Optimizer);
    }

    /// <summary>One optimizer step on the NELBO of <paramref name="batch"/>.</summary>
    public DiagViState Update(DiagViState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var next = AlgorithmState.Target(state, inplace);
        using var scope = NewDisposeScope();
        var t = Temperature.At(state.Step, "temperature");
        var generator = Rng.For(state.Seed, state.Step, state.Params.Device);
        var mean = state.Params.Detach();
        var sd = state.LogSd.Map(l => l.detach().exp());
        ParameterTree? gradMean = null, gradLogSd = null;
        Tensor value = zeros(Array.Empty<long>(), dtype: mean.ScalarType, device: mean.Device);
        Tensor elbo = value;
        var auxes = new List<Tensor>();
        // log q(μ + σξ) = −½ Σ ξ² − Σ log σ − (D/2) log 2π: no need to recompute (θ − μ)/σ.
        var logQConstant = state.LogSd.SumOf(l => l.detach()) + 0.5 * mean.NumberOfElements * Math.Log(2 * Math.PI);
        for (var s = 0; s < Samples; s++)
        {
            var xi = mean.RandnLike(generator);
            var theta = mean.ZipMap(sd, xi, (m, sigma, z) => m.addcmul(sigma, z, 1));
            var (v, aux, g) = Autodiff.ValueAndGrad(LogPosterior, theta, batch);
            NonFiniteException.ThrowIfNotFinite(state.Step, v, g);
            if (aux is not null) auxes.Add(aux);
            var logQ = xi.SumOf(z => z.square()) * -0.5 - logQConstant;
            value = value + v;
            elbo = elbo + v - t * logQ;
            // d(log π − T log q)/dμ and /dlog σ for this sample (see the remarks on DiagVi).
            var dMean = StickingTheLanding && t != 0 ? g.ZipMap(sd, xi, (gi, sigma, z) => gi.add(z.div(sigma), alpha: t)) : g;
            var dLogSd = g.ZipMap(sd, xi, (gi, sigma, z) =>
                t == 0 ? gi.mul(sigma).mul_(z) : StickingTheLanding ? gi.mul(sigma).mul_(z).addcmul_(z, z, value: t) : gi.mul(sigma).mul_(z).add_(t));
            gradMean = gradMean is null ? dMean : gradMean.Add(dMean);
            gradLogSd = gradLogSd is null ? dLogSd : gradLogSd.Add(dLogSd);
        }
        return Finish(next, state.Step, new[] { (AlgorithmState.ParamsField, gradMean!.Leaves), ("log_sd", gradLogSd!.Leaves) }, value, elbo, auxes);
    }

    /// <summary><paramref name="count"/> draws from q; see <see cref="DiagVi.Sample"/>.</summary>
    public ParameterTree Sample(DiagViState state, long count, long seed = 0) => DiagVi.Sample(state, count, seed);

    /// <summary>The NELBO of the state's q on a batch; see <see cref="DiagVi.Nelbo{TBatch}"/>.</summary>
    public Tensor Nelbo(DiagViState state, TBatch batch, int samples = 1, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        return DiagVi.Nelbo(LogPosterior, state.Params, state.LogSd, batch, samples, seed, Temperature.At(state.Step, "temperature"));
    }
}
