using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using Posteriors.Optim;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// Variational inference with a dense Gaussian q = N(μ, L Lᵀ) over all parameters flattened in the tree's order
/// (docs/ALGORITHMS.md §3): an <see cref="Optimizer"/> (SGD or Adam, moments kept in the state) minimises
/// NELBO = −mean_s [log π(θ_s) − T log q(θ_s)], θ_s = μ + L ξ_s, over μ and the lower-triangular L, stored packed row
/// by row (<see cref="LowerTriangular"/>).
/// </summary>
/// <remarks>
/// As in <see cref="DiagVi"/>, the gradient of log π reaches μ and L by the chain rule (∂θ/∂μ = I, ∂θ/∂L = ξᵀ on the
/// lower triangle). The entropy term is analytic: with sticking the landing, only the path derivative of log q,
/// ∇θ log q = −L⁻ᵀ ξ, is kept; without it, the exact total derivative (0 for μ, −diag(1/Lᵢᵢ) for L).
/// Memory grows as P²: use it for small models or a parameter subset evaluated inside the log posterior.
/// </remarks>
public static class DenseVi
{
    /// <summary>Builds the transform.</summary>
    /// <param name="logPosterior">log π(θ; batch), batch-normalised.</param>
    /// <param name="optimizer">The optimizer over μ and packed L, e.g. <c>Optimizer.Adam(lr: 1e-2)</c>.</param>
    /// <param name="temperature">T on the entropy term (constant or schedule, ≥ 0; default 1).</param>
    /// <param name="initLogSd">L starts as exp(initLogSd) · I (default 0).</param>
    /// <param name="samples">S, Monte Carlo samples per step (default 1).</param>
    /// <param name="stickingTheLanding">Drop the score part of the entropy gradient (default on).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DenseVi<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Optimizer optimizer,
        Schedule? temperature = null, double initLogSd = 0, int samples = 1, bool stickingTheLanding = true) =>
        new(logPosterior, optimizer, temperature, initLogSd, samples, stickingTheLanding);

    /// <summary>The covariance L Lᵀ [P, P] of a state.</summary>
    public static Tensor Covariance(DenseViState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var l = LowerTriangular.Unpack(state.Cholesky.detach());
        return l.mm(l.t());
    }

    /// <summary>The NELBO of q = N(<paramref name="mean"/>, L Lᵀ) on a batch with <paramref name="samples"/> draws (a detached scalar).</summary>
    /// <param name="logPosterior">log π.</param>
    /// <param name="mean">μ.</param>
    /// <param name="cholesky">L packed row by row, length P(P+1)/2.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="samples">Monte Carlo samples.</param>
    /// <param name="seed">Seed of the draws.</param>
    /// <param name="temperature">T on the entropy term.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    /// <exception cref="ArgumentException"><paramref name="cholesky"/> does not match the number of parameters.</exception>
    public static Tensor Nelbo<TBatch>(LogPosterior<TBatch> logPosterior, ParameterTree mean, Tensor cholesky, TBatch batch,
        int samples = 1, long seed = 0, double temperature = 1)
    {
        ArgumentNullException.ThrowIfNull(logPosterior);
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(cholesky);
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "The number of Monte Carlo samples must be positive.");
        Check.NonNegative(temperature, nameof(temperature));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var l = UnpackFor(mean, cholesky);
        var mu = mean.Flatten().detach();
        var generator = new Rng().For(seed, 0, mean.Device);
        Tensor total = zeros(Array.Empty<long>(), dtype: mu.dtype, device: mu.device);
        for (var s = 0; s < samples; s++)
        {
            var xi = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: generator);
            var theta = mean.Unflatten(mu + l.mv(xi));
            total = total + logPosterior(theta, batch).Differentiable("Dense VI").Value.reshape(Array.Empty<long>()) - temperature * LogQ(xi, l);
        }
        return (-total / samples).MoveToOuterDisposeScope();
    }

    /// <summary><paramref name="count"/> draws from q: every leaf gets a leading dimension <paramref name="count"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
    public static ParameterTree Sample(DenseViState state, long count, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        using var scope = NewDisposeScope();
        var mu = state.Params.Flatten().detach();
        var l = LowerTriangular.Unpack(state.Cholesky.detach());
        var generator = new Rng().For(seed, 0, mu.device);
        var xi = randn(new[] { count, mu.shape[0] }, dtype: mu.dtype, device: mu.device, generator: generator);
        var draws = mu.unsqueeze(0) + xi.mm(l.t());
        return state.Params.UnflattenRows(draws).MoveToOuterDisposeScope();
    }

    /// <summary>log N(μ + Lξ; μ, L Lᵀ) = −½ ξᵀξ − Σ log |Lᵢᵢ| − (P/2) log 2π.</summary>
    internal static Tensor LogQ(Tensor xi, Tensor l) =>
        xi.square().sum() * -0.5 - l.diagonal().abs().log().sum() - xi.shape[0] * 0.5 * Math.Log(2 * Math.PI);

    internal static Tensor UnpackFor(ParameterTree mean, Tensor cholesky)
    {
        var p = mean.NumberOfElements;
        if (cholesky.dim() != 1 || cholesky.shape[0] != LowerTriangular.PackedLength(p))
            throw new ArgumentException(
                $"The packed Cholesky factor has shape [{string.Join(", ", cholesky.shape)}]; {p} parameters need length {LowerTriangular.PackedLength(p)}.", nameof(cholesky));
        return LowerTriangular.Unpack(cholesky.detach());
    }
}

/// <summary>The state of <see cref="DenseVi{TBatch}"/>: μ, the packed Cholesky factor, the optimizer's moments, the step and the seed.</summary>
public sealed class DenseViState : ViState, IPersistentState<DenseViState>
{
    private DenseViState(StateRecord fields) : base(fields) { }

    internal static DenseViState New(ParameterTree mean, Tensor cholesky, long seed, Optimizer optimizer) =>
        new(NewFields(Kind, KindVersion, mean, seed, optimizer, "cholesky", cholesky));

    private protected override AlgorithmState Create(StateRecord fields) => new DenseViState(fields);

    /// <summary>L packed row by row (length P(P+1)/2); Σ = L Lᵀ.</summary>
    public Tensor Cholesky => Fields.GetTensor("cholesky");

    /// <inheritdoc />
    public static string Kind => "DenseVi";

    /// <inheritdoc />
    /// <remarks>Version 1 kept a live TorchSharp optimizer (saved as its bytes) and spelled μ "mean".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DenseViState ReadFrom(StateRecord record) => new(Upgrade(record, "cholesky", typeof(Tensor)));
}

/// <summary>Dense Gaussian VI. See <see cref="DenseVi"/>.</summary>
public sealed class DenseVi<TBatch> : ViTransform<DenseViState, TBatch>, ITransform<DenseViState, TBatch>
{
    internal DenseVi(LogPosterior<TBatch> logPosterior, Optimizer optimizer, Schedule? temperature, double initLogSd, int samples, bool stickingTheLanding)
        : base(logPosterior, optimizer, temperature, initLogSd, samples, stickingTheLanding) { }

    /// <summary>A fresh state with μ = <paramref name="parameters"/>, L = exp(initLogSd) I and noise seed <paramref name="seed"/>.</summary>
    public DenseViState Init(ParameterTree parameters, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var p = parameters.NumberOfElements;
        using var scope = NewDisposeScope();
        var l = LowerTriangular.Pack(eye(p, dtype: parameters.ScalarType, device: parameters.Device) * Math.Exp(InitLogSd)).DetachFromDisposeScope();
        return DenseViState.New(parameters, l, seed, Optimizer);
    }

    /// <summary>One optimizer step on the NELBO of <paramref name="batch"/>.</summary>
    public DenseViState Update(DenseViState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var next = AlgorithmState.Target(state, inplace);
        using var scope = NewDisposeScope();
        var t = Temperature.At(state.Step, "temperature");
        var generator = Rng.For(state.Seed, state.Step, state.Params.Device);
        var mean = state.Params.Detach();
        var mu = mean.Flatten();
        var l = DenseVi.UnpackFor(mean, state.Cholesky);
        var gradMu = zeros_like(mu);
        var gradL = zeros_like(l);
        Tensor value = zeros(Array.Empty<long>(), dtype: mu.dtype, device: mu.device);
        Tensor elbo = value;
        var auxes = new List<Tensor>();
        var inverseDiagonal = StickingTheLanding ? null : diag(l.diagonal().reciprocal());
        for (var s = 0; s < Samples; s++)
        {
            var xi = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: generator);
            var theta = mean.Unflatten(mu + l.mv(xi));
            var (v, aux, g) = Autodiff.ValueAndGrad(LogPosterior, theta, batch);
            NonFiniteException.ThrowIfNotFinite(state.Step, v, g);
            if (aux is not null) auxes.Add(aux);
            value = value + v;
            elbo = elbo + v - t * DenseVi.LogQ(xi, l);
            var gFlat = g.Flatten();
            if (StickingTheLanding)
            {
                // Path derivative of log q: ∇θ log q = −Σ⁻¹(θ − μ) = −L⁻ᵀ ξ, then through θ = μ + L ξ.
                var r = linalg.solve_triangular(l.t(), xi.unsqueeze(1), upper: true).squeeze(1);
                var d = gFlat + t * r;
                gradMu = gradMu + d;
                gradL = gradL + d.outer(xi);
            }
            else
            {
                gradMu = gradMu + gFlat;
                gradL = gradL + gFlat.outer(xi) + t * inverseDiagonal!;
            }
        }
        return Finish(next, state.Step, new[] { (AlgorithmState.ParamsField, mean.Unflatten(gradMu).Leaves), ("cholesky", (IReadOnlyList<Tensor>)new[] { LowerTriangular.Pack(gradL) }) },
            value, elbo, auxes);
    }

    /// <summary><paramref name="count"/> draws from q; see <see cref="DenseVi.Sample"/>.</summary>
    public ParameterTree Sample(DenseViState state, long count, long seed = 0) => DenseVi.Sample(state, count, seed);

    /// <summary>The NELBO of the state's q on a batch; see <see cref="DenseVi.Nelbo{TBatch}"/>.</summary>
    public Tensor Nelbo(DenseViState state, TBatch batch, int samples = 1, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        return DenseVi.Nelbo(LogPosterior, state.Params, state.Cholesky, batch, samples, seed, Temperature.At(state.Step, "temperature"));
    }
}
