using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// Variational inference with a dense Gaussian q = N(μ, L Lᵀ) over all parameters flattened in the tree's order
/// (docs/ALGORITHMS.md §3): any TorchSharp optimizer minimises NELBO = −mean_s [log π(θ_s) − T log q(θ_s)], θ_s = μ + L ξ_s,
/// over μ and the lower-triangular L, stored packed row by row (<see cref="LowerTriangular"/>).
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
    /// <param name="optimizer">Creates the optimizer over μ and packed L, e.g. <c>ps =&gt; torch.optim.Adam(ps, lr: 1e-2)</c>.</param>
    /// <param name="temperature">T on the entropy term (constant or schedule, ≥ 0; default 1).</param>
    /// <param name="initLogSd">L starts as exp(initLogSd) · I (default 0).</param>
    /// <param name="samples">S, Monte Carlo samples per step (default 1).</param>
    /// <param name="stickingTheLanding">Drop the score part of the entropy gradient (default on).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static DenseVi<TBatch> Build<TBatch>(LogPosterior<TBatch> logPosterior, Func<IEnumerable<Parameter>, optim.Optimizer> optimizer,
        Schedule? temperature = null, double initLogSd = 0, int samples = 1, bool stickingTheLanding = true) =>
        new(logPosterior, optimizer, ViOptimizer.CheckSamples(samples, temperature), Check.Finite(initLogSd, nameof(initLogSd)), samples, stickingTheLanding);

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
            total = total + logPosterior(theta, batch).Value.reshape(Array.Empty<long>()) - temperature * LogQ(xi, l);
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
        var leaves = new List<KeyValuePair<string, Tensor>>();
        long offset = 0;
        foreach (var (name, leaf) in state.Params)
        {
            var n = leaf.numel();
            leaves.Add(new(name, draws.narrow(1, offset, n).reshape(new[] { count }.Concat(leaf.shape).ToArray()).contiguous()));
            offset += n;
        }
        return new ParameterTree(leaves).MoveToOuterDisposeScope();
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

/// <summary>The state of <see cref="DenseVi{TBatch}"/>: μ, the packed Cholesky factor, the optimizer, the step and the seed.</summary>
public sealed class DenseViState : ViState, IPersistentState<DenseViState>
{
    internal DenseViState(ParameterTree mean, Tensor cholesky, optim.Optimizer? optimizer, byte[]? pendingOptimizerState,
        long step, long seed, Tensor logPosterior, Tensor nelbo)
        : base(mean, optimizer, pendingOptimizerState, step, seed, logPosterior, nelbo) => Cholesky = cholesky;

    /// <summary>L packed row by row (a Parameter of length P(P+1)/2); Σ = L Lᵀ.</summary>
    public Tensor Cholesky { get; }

    /// <inheritdoc />
    public static string Kind => "DenseVi";

    /// <inheritdoc />
    public static int KindVersion => 1;

    /// <inheritdoc />
    public void WriteTo(StateRecord record)
    {
        WriteCommon(record);
        record.Set("cholesky", Cholesky);
    }

    /// <inheritdoc />
    public static DenseViState ReadFrom(StateRecord record)
    {
        var (mean, optimizer, step, seed, logPosterior, nelbo) = ReadCommon(record);
        return new(mean, new Parameter(record.GetTensor("cholesky"), requires_grad: true), null, optimizer, step, seed, logPosterior, nelbo);
    }
}

/// <summary>Dense Gaussian VI. See <see cref="DenseVi"/>.</summary>
public sealed class DenseVi<TBatch> : ITransform<DenseViState, TBatch>
{
    private readonly LogPosterior<TBatch> _logPosterior;
    private readonly Func<IEnumerable<Parameter>, optim.Optimizer> _optimizer;
    private readonly Schedule _temperature;
    private readonly double _initLogSd;
    private readonly int _samples;
    private readonly bool _stl;
    private readonly Rng _rng = new();

    internal DenseVi(LogPosterior<TBatch> logPosterior, Func<IEnumerable<Parameter>, optim.Optimizer> optimizer, Schedule temperature,
        double initLogSd, int samples, bool stickingTheLanding)
    {
        _logPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        _temperature = temperature;
        _initLogSd = initLogSd;
        _samples = samples;
        _stl = stickingTheLanding;
    }

    /// <inheritdoc />
    public DenseViState Init(ParameterTree parameters) => Init(parameters, seed: 0);

    /// <summary>A fresh state with μ = <paramref name="parameters"/>, L = exp(initLogSd) I and noise seed <paramref name="seed"/>.</summary>
    public DenseViState Init(ParameterTree parameters, long seed)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var mean = ViOptimizer.AsParameters(parameters);
        var p = parameters.NumberOfElements;
        var l = LowerTriangular.Pack(eye(p, dtype: parameters.ScalarType, device: parameters.Device) * Math.Exp(_initLogSd));
        var cholesky = new Parameter(l, requires_grad: true);
        var optimizer = ViOptimizer.Create(_optimizer, mean.Leaves.Append(cholesky));
        return new DenseViState(mean, cholesky, optimizer, null, 0, seed, TransformExtensions.NotYetEvaluated(parameters),
            TransformExtensions.NotYetEvaluated(parameters));
    }

    /// <summary>One optimizer step on the NELBO of <paramref name="batch"/>.</summary>
    public DenseViState Update(DenseViState state, TBatch batch, bool inplace = false)
    {
        ArgumentNullException.ThrowIfNull(state);
        var target = inplace ? state : Copy(state);
        target.Optimizer ??= ViOptimizer.Restore(_optimizer, target.Params.Leaves.Append(target.Cholesky), target.PendingOptimizerState);
        target.PendingOptimizerState = null;

        using (var scope = NewDisposeScope())
        {
            var t = _temperature.At(target.Step, "temperature");
            var generator = _rng.For(target.Seed, target.Step, target.Params.Device);
            var mean = target.Params.Detach();
            var mu = mean.Flatten();
            var l = DenseVi.UnpackFor(mean, target.Cholesky);
            var gradMu = zeros_like(mu);
            var gradL = zeros_like(l);
            Tensor value = zeros(Array.Empty<long>(), dtype: mu.dtype, device: mu.device);
            Tensor elbo = value;
            var inverseDiagonal = _stl ? null : diag(l.diagonal().reciprocal());
            for (var s = 0; s < _samples; s++)
            {
                var xi = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: generator);
                var theta = mean.Unflatten(mu + l.mv(xi));
                var (v, _, g) = Autodiff.ValueAndGrad(_logPosterior, theta, batch);
                NonFiniteException.ThrowIfNotFinite(target.Step, v, g);
                value = value + v;
                elbo = elbo + v - t * DenseVi.LogQ(xi, l);
                var gFlat = g.Flatten();
                if (_stl)
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
            var gradients = new List<Tensor>();
            gradients.AddRange(mean.Unflatten(gradMu * (-1.0 / _samples)).Leaves);
            gradients.Add(LowerTriangular.Pack(gradL * (-1.0 / _samples)));
            ViOptimizer.Step(target.Optimizer, target.Params.Leaves.Append(target.Cholesky).ToList(), gradients);
            var meanValue = value / _samples;
            var nelbo = -elbo / _samples;
            if (inplace)
            {
                target.LogPosterior.copy_(meanValue);
                target.Nelbo.copy_(nelbo);
            }
            else
            {
                target.LogPosterior = meanValue.MoveToOuterDisposeScope();
                target.Nelbo = nelbo.MoveToOuterDisposeScope();
            }
        }
        target.Step++;
        return target;
    }

    /// <summary><paramref name="count"/> draws from q; see <see cref="DenseVi.Sample"/>.</summary>
    public ParameterTree Sample(DenseViState state, long count, long seed = 0) => DenseVi.Sample(state, count, seed);

    /// <summary>The NELBO of the state's q on a batch; see <see cref="DenseVi.Nelbo{TBatch}"/>.</summary>
    public Tensor Nelbo(DenseViState state, TBatch batch, int samples = 1, long seed = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        return DenseVi.Nelbo(_logPosterior, state.Params, state.Cholesky, batch, samples, seed, _temperature.At(state.Step, "temperature"));
    }

    private DenseViState Copy(DenseViState state)
    {
        var mean = ViOptimizer.AsParameters(state.Params);
        var cholesky = new Parameter(state.Cholesky.detach().clone(), requires_grad: true);
        var optimizer = ViOptimizer.Restore(_optimizer, mean.Leaves.Append(cholesky), ViOptimizer.Save(state.Optimizer, state.PendingOptimizerState));
        return new DenseViState(mean, cholesky, optimizer, null, state.Step, state.Seed, state.LogPosterior.clone(), state.Nelbo.clone());
    }
}
