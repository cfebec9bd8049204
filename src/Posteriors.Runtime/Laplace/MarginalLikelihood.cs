using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// The Laplace approximation's log evidence (marginal likelihood) as a function of the prior precision, and its
/// maximisation (docs/ALGORITHMS.md §4b). With a N(0, δ_g⁻¹ I) prior on each parameter group g of P_g elements and the
/// likelihood's curvature H (eigenvalues λ) at the mode θ̂,
/// <c>log Z(δ) = log p(D | θ̂) − ½ Σ_g δ_g ‖θ̂_g‖² + ½ Σ_g P_g log δ_g − ½ log det(H + diag(δ))</c>; the constant
/// −(P/2) log 2π of the prior cancels against the Gaussian integral's.
/// </summary>
public static class MarginalLikelihood
{
    /// <summary>One group of parameters sharing a prior precision.</summary>
    /// <param name="Name">The group (a layer's name, or "all").</param>
    /// <param name="CurvatureEigenvalues">The eigenvalues of the likelihood's curvature restricted to the group (flattened, ≥ 0), assuming the curvature is block-diagonal over groups.</param>
    /// <param name="SquaredNorm">‖θ̂_g‖² of the group's mode.</param>
    public sealed record Group(string Name, Tensor CurvatureEigenvalues, double SquaredNorm)
    {
        /// <summary>P_g, the group's number of parameters.</summary>
        public long Count => CurvatureEigenvalues.numel();
    }

    /// <summary>The result of <see cref="Tune"/>.</summary>
    /// <param name="PriorPrecision">δ per group (all equal when tuned as one scalar).</param>
    /// <param name="LogEvidence">log Z at that δ.</param>
    /// <param name="Steps">Gradient steps taken.</param>
    public sealed record Tuned(IReadOnlyList<double> PriorPrecision, double LogEvidence, int Steps);

    /// <summary>One group per KFAC layer: eigenvalues λ_G λ_Aᵀ, the layer's weight matrix as the mode.</summary>
    public static IReadOnlyList<Group> Groups(KfacLaplaceState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Layers.Select(l => new Group(l.Key, state.CurvatureEigenvalues(l).flatten(), state.WeightMatrix(l).square().sum().ToDouble())).ToList();
    }

    /// <summary>
    /// One group per layer of a diagonal Laplace state (leaves sharing the name before the last '.'), its curvature the
    /// precision minus the <paramref name="initPrecision"/> the state was built with (the diagonal GGN or Fisher itself).
    /// </summary>
    public static IReadOnlyList<Group> Groups(DiagLaplaceState state, double initPrecision = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.Precision.Names.GroupBy(LayerOf).Select(g =>
        {
            var names = g.ToList();
            var curvature = cat(names.Select(n => (state.Precision[n] - initPrecision).clamp_min(0).flatten()).ToArray());
            var norm = names.Sum(n => state.Params[n].detach().square().sum().ToDouble());
            return new Group(g.Key, curvature, norm);
        }).ToList();
    }

    /// <summary>One group over a dense Laplace state's subset: the eigenvalues of its precision minus <paramref name="initPrecision"/> I.</summary>
    public static IReadOnlyList<Group> Groups(DenseLaplaceState state, double initPrecision = 0)
    {
        ArgumentNullException.ThrowIfNull(state);
        var p = state.Precision;
        var h = p - eye(p.shape[0], dtype: p.dtype, device: p.device) * initPrecision;
        var values = linalg.eigvalsh((h + h.t()) / 2).clamp_min(0);
        return new[] { new Group("all", values, state.Params.Select(state.Subset).Flatten().square().sum().ToDouble()) };
    }

    private static string LayerOf(string name) => name.LastIndexOf('.') is var i and > 0 ? name[..i] : name;

    /// <summary>log Z at the given prior precision: one value for every group or one per group.</summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="logLikelihood">log p(D | θ̂), the log-likelihood of the whole training set at the mode.</param>
    /// <param name="priorPrecision">δ: one value, or one per group.</param>
    /// <exception cref="ArgumentOutOfRangeException">A prior precision is not positive and finite (the message names the group).</exception>
    public static double LogEvidence(IReadOnlyList<Group> groups, double logLikelihood, IReadOnlyList<double> priorPrecision)
    {
        var delta = Expand(groups, priorPrecision, nameof(priorPrecision));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return LogEvidenceAt(groups, logLikelihood, tensor(delta.Select(d => Math.Log(d)).ToArray(), dtype: float64)).ToDouble();
    }

    private static Tensor LogEvidenceAt(IReadOnlyList<Group> groups, double logLikelihood, Tensor logDelta)
    {
        var total = tensor(logLikelihood, dtype: float64);
        for (var g = 0; g < groups.Count; g++)
        {
            var rho = logDelta[groups.Count == logDelta.numel() ? g : 0];
            var delta = rho.exp();
            var lambda = groups[g].CurvatureEigenvalues.detach().to(float64).to(CPU);
            total = total - 0.5 * delta * groups[g].SquaredNorm + 0.5 * groups[g].Count * rho - 0.5 * (lambda + delta).log().sum();
        }
        return total;
    }

    /// <summary>
    /// Maximises log Z over the prior precision by gradient ascent (Adam) on log δ — one scalar for every group, or one per
    /// group — from <paramref name="initial"/>, until the relative change of δ in a step is below 1e-6 or
    /// <paramref name="maxSteps"/> steps.
    /// </summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="logLikelihood">log p(D | θ̂).</param>
    /// <param name="perGroup">One δ per group (per layer) instead of one scalar.</param>
    /// <param name="initial">The starting δ (positive).</param>
    /// <param name="maxSteps">Most gradient steps.</param>
    /// <param name="lr">Adam's step size on log δ.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initial"/>, <paramref name="maxSteps"/> or <paramref name="lr"/> is out of range.</exception>
    public static Tuned Tune(IReadOnlyList<Group> groups, double logLikelihood, bool perGroup = false, double initial = 1, int maxSteps = 2000, double lr = 0.1)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (groups.Count == 0) throw new ArgumentException("No parameter groups.", nameof(groups));
        if (!(initial > 0) || double.IsInfinity(initial)) throw new ArgumentOutOfRangeException(nameof(initial), initial, "The initial prior precision must be positive and finite.");
        if (maxSteps <= 0) throw new ArgumentOutOfRangeException(nameof(maxSteps), maxSteps, "The number of steps must be positive.");
        Check.Positive(lr, nameof(lr));
        using var scope = NewDisposeScope();
        var rho = full(perGroup ? groups.Count : 1, Math.Log(initial), dtype: float64).requires_grad_(true);
        var m = zeros_like(rho);
        var v = zeros_like(rho);
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        var steps = 0;
        for (var t = 1; t <= maxSteps; t++)
        {
            steps = t;
            var objective = -LogEvidenceAt(groups, logLikelihood, rho);
            var grad = autograd.grad(new[] { objective }, new[] { rho })[0].detach();
            using (no_grad())
            {
                m.mul_(beta1).add_(grad, alpha: 1 - beta1);
                v.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
                var step = m / (1 - Math.Pow(beta1, t)) / ((v / (1 - Math.Pow(beta2, t))).sqrt() + eps) * lr;
                rho.sub_(step);
                if (step.abs().max().ToDouble() < 1e-6) break;
            }
        }
        var delta = rho.detach().exp();
        var values = Enumerable.Range(0, groups.Count).Select(g => delta[perGroup ? g : 0].ToDouble()).ToArray();
        return new Tuned(values, LogEvidence(groups, logLikelihood, (IReadOnlyList<double>)values), steps);
    }

    /// <summary>
    /// The alternative to the evidence: the candidate prior precision with the lowest validation NLL.
    /// </summary>
    /// <param name="candidates">The prior precisions to try (each positive).</param>
    /// <param name="validationNll">The validation NLL of the posterior at a prior precision.</param>
    /// <returns>The best candidate and every candidate's NLL.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A candidate is not positive and finite.</exception>
    public static (double Best, IReadOnlyList<(double PriorPrecision, double Nll)> Grid) ValidationGrid(IEnumerable<double> candidates, Func<double, double> validationNll)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(validationNll);
        var grid = new List<(double, double)>();
        foreach (var c in candidates)
        {
            if (!(c > 0) || double.IsInfinity(c)) throw new ArgumentOutOfRangeException(nameof(candidates), c, "Every candidate prior precision must be positive and finite.");
            grid.Add((c, validationNll(c)));
        }
        if (grid.Count == 0) throw new ArgumentException("No candidates.", nameof(candidates));
        return (grid.MinBy(g => g.Item2).Item1, grid);
    }

    private static double[] Expand(IReadOnlyList<Group> groups, IReadOnlyList<double> priorPrecision, string paramName)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(priorPrecision);
        if (priorPrecision.Count != 1 && priorPrecision.Count != groups.Count)
            throw new ArgumentException($"{priorPrecision.Count} prior precisions for {groups.Count} groups: give one, or one per group.", paramName);
        var values = Enumerable.Range(0, groups.Count).Select(g => priorPrecision[priorPrecision.Count == 1 ? 0 : g]).ToArray();
        for (var g = 0; g < values.Length; g++)
            if (!(values[g] > 0) || double.IsInfinity(values[g]))
                throw new ArgumentOutOfRangeException(paramName, values[g], $"The prior precision of group '{groups[g].Name}' must be positive and finite.");
        return values;
    }
}
