using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// The maps from the unconstrained tree leaves u to constrained parameters θ for the constraint attributes, each with
/// its inverse and log |det ∂θ/∂u| (added to the log prior so that samplers in u target the prior on θ). Vector
/// constraints act on the last dimension. Generated models call these; they are public for hand-written models.
/// </summary>
public static class Bijectors
{
    /// <summary>θ = lo + (hi − lo) σ(u), in (lo, hi) (<see cref="BoundedAttribute"/>).</summary>
    public static Tensor IntervalForward(Tensor u, PriorArgument low, PriorArgument high) =>
        Plus(Times(u.sigmoid(), Width(low, high)), low);

    /// <summary>u = logit((θ − lo)/(hi − lo)).</summary>
    public static Tensor IntervalInverse(Tensor theta, PriorArgument low, PriorArgument high)
    {
        var unit = Divide(Minus(theta, low), Width(low, high));
        return unit.log() - (-unit).log1p();
    }

    /// <summary>Σ log |dθ/du| = Σ [log(hi − lo) + log σ(u) + log σ(−u)].</summary>
    public static Tensor IntervalLogDetJacobian(Tensor u, PriorArgument low, PriorArgument high)
    {
        var logWidth = Width(low, high) is { Tensor: { } w } ? w.log() : null;
        var core = nn.functional.logsigmoid(u) + nn.functional.logsigmoid(-u);
        return logWidth is null ? core.sum() + u.numel() * Math.Log(Width(low, high).Value) : (core + logWidth).sum();
    }

    /// <summary>
    /// ∇u [f(θ(u)) + log |dθ/du|] from g = ∇θ f (the analytic prior gradient of a <see cref="BoundedAttribute"/> leaf):
    /// g (hi − lo) σ(u) σ(−u) + 1 − 2σ(u).
    /// </summary>
    public static Tensor IntervalGradient(Tensor u, Tensor gradient, PriorArgument low, PriorArgument high)
    {
        var s = u.sigmoid();
        return Times(gradient * s * (1 - s), Width(low, high)) + 1 - 2 * s;
    }

    /// <summary>
    /// Stick-breaking onto the simplex (<see cref="SimplexAttribute"/>): u [..., K − 1] → θ [..., K] with
    /// zₖ = σ(uₖ − log(K − k)), θₖ = zₖ (1 − Σⱼ₍ₖ θⱼ) and θ_K the remainder; u = 0 is the uniform point.
    /// </summary>
    public static Tensor SimplexForward(Tensor u)
    {
        var (z, logRemaining) = Sticks(u);
        var remaining = logRemaining.exp();
        var head = z * remaining;
        var last = (logRemaining.narrow(-1, u.shape[^1] - 1, 1) + (-z.narrow(-1, u.shape[^1] - 1, 1)).log1p()).exp();
        return cat(new[] { head, last }, -1);
    }

    /// <summary>The inverse of <see cref="SimplexForward"/> for θ [..., K] on the open simplex.</summary>
    public static Tensor SimplexInverse(Tensor theta)
    {
        var k = theta.shape[^1];
        var head = theta.narrow(-1, 0, k - 1);
        var before = head.cumsum(-1) - head;                       // Σⱼ₍ₖ θⱼ
        var z = head / (1 - before);
        return z.log() - (-z).log1p() + Offsets(theta, k);
    }

    /// <summary>Σ log |det ∂θ/∂u| = Σₖ [log zₖ + log(1 − zₖ) + log(1 − Σⱼ₍ₖ θⱼ)].</summary>
    public static Tensor SimplexLogDetJacobian(Tensor u)
    {
        var shifted = u - Offsets(u, u.shape[^1] + 1);
        var (_, logRemaining) = Sticks(u);
        return (nn.functional.logsigmoid(shifted) + nn.functional.logsigmoid(-shifted) + logRemaining).sum();
    }

    /// <summary>
    /// ∇u [f(θ(u)) + log |det ∂θ/∂u|] from g = ∇θ f, with θ = <see cref="SimplexForward"/>(u) given: for stick k
    /// (0-based, of K), (1 − zₖ) gₖθₖ − zₖ Σ_{j&gt;k} gⱼθⱼ + 1 − zₖ (K − k).
    /// </summary>
    public static Tensor SimplexGradient(Tensor u, Tensor theta, Tensor gradient)
    {
        var k = theta.shape[^1];
        var z = (u - Offsets(u, k)).sigmoid();
        var weighted = gradient * theta;
        var after = (weighted.flip(-1).cumsum(-1).flip(-1) - weighted).narrow(-1, 0, k - 1);
        var sticks = arange(k, 1, -1, dtype: u.dtype, device: u.device);   // K − k
        return (1 - z) * weighted.narrow(-1, 0, k - 1) - z * after + 1 - z * sticks;
    }

    /// <summary>z and log(1 − Σⱼ₍ₖ θⱼ) = Σⱼ₍ₖ log(1 − zⱼ) for each stick.</summary>
    private static (Tensor Z, Tensor LogRemaining) Sticks(Tensor u)
    {
        var shifted = u - Offsets(u, u.shape[^1] + 1);
        var z = shifted.sigmoid();
        var logOneMinus = nn.functional.logsigmoid(-shifted);
        return (z, logOneMinus.cumsum(-1) - logOneMinus);
    }

    /// <summary>log(K − k) for k = 1 … K − 1 (so that u = 0 maps to the uniform point).</summary>
    private static Tensor Offsets(Tensor like, long k) =>
        arange(k - 1, 0, -1, dtype: like.dtype, device: like.device).log();

    /// <summary>An increasing vector (<see cref="OrderedAttribute"/>): θ₁ = u₁, θₖ = θₖ₋₁ + exp(uₖ).</summary>
    public static Tensor OrderedForward(Tensor u) =>
        cat(new[] { u.narrow(-1, 0, 1), u.narrow(-1, 1, u.shape[^1] - 1).exp() }, -1).cumsum(-1);

    /// <summary>u₁ = θ₁, uₖ = log(θₖ − θₖ₋₁).</summary>
    public static Tensor OrderedInverse(Tensor theta) =>
        cat(new[] { theta.narrow(-1, 0, 1), theta.diff(dim: -1).log() }, -1);

    /// <summary>Σ log |det ∂θ/∂u| = Σ_{k ≥ 2} uₖ.</summary>
    public static Tensor OrderedLogDetJacobian(Tensor u) => u.narrow(-1, 1, u.shape[^1] - 1).sum();

    /// <summary>
    /// ∇u [f(θ(u)) + log |det ∂θ/∂u|] from g = ∇θ f: Σ_{j ≥ 1} gⱼ for u₁, and (Σ_{j ≥ k} gⱼ) e^{uₖ} + 1 for k ≥ 2.
    /// </summary>
    public static Tensor OrderedGradient(Tensor u, Tensor gradient)
    {
        var tail = gradient.flip(-1).cumsum(-1).flip(-1);
        var n = u.shape[^1];
        return cat(new[] { tail.narrow(-1, 0, 1), tail.narrow(-1, 1, n - 1) * u.narrow(-1, 1, n - 1).exp() + 1 }, -1);
    }

    /// <summary>
    /// The Cholesky factor L [K, K] of a correlation matrix (<see cref="CholeskyCorrelationAttribute"/>) from
    /// K(K − 1)/2 unconstrained values: canonical partial correlations zᵢⱼ = tanh(u), Lᵢⱼ = zᵢⱼ √(1 − Σₖ₍ⱼ Lᵢₖ²) for
    /// j &lt; i and Lᵢᵢ = √(1 − Σₖ₍ᵢ Lᵢₖ²), so every row has unit norm.
    /// </summary>
    public static Tensor CholeskyCorrelationForward(Tensor u) => FromPartialCorrelations(u.tanh(), out _);

    /// <summary>The inverse of <see cref="CholeskyCorrelationForward"/>.</summary>
    public static Tensor CholeskyCorrelationInverse(Tensor l)
    {
        var k = l.shape[^1];
        var values = new List<Tensor>();
        for (var i = 1; i < k; i++)
        {
            var row = l[i];
            var used = zeros(Array.Empty<long>(), dtype: l.dtype, device: l.device);
            for (var j = 0; j < i; j++)
            {
                values.Add((row[j] / (1 - used).sqrt()).atanh());
                used = used + row[j].square();
            }
        }
        return stack(values.ToArray());
    }

    /// <summary>Σ log |det ∂L/∂u| = Σ log(1 − zᵢⱼ²) + Σ_{j &lt; i} ½ log(1 − Σₖ₍ⱼ Lᵢₖ²).</summary>
    public static Tensor CholeskyCorrelationLogDetJacobian(Tensor u)
    {
        var z = u.tanh();
        FromPartialCorrelations(z, out var logScale);
        return (1 - z.square()).log().sum() + logScale;
    }

    /// <summary>
    /// ∇u [f(L(u)) + log |det ∂L/∂u|] from G = ∇L f, with L = <see cref="CholeskyCorrelationForward"/>(u) given. Row by
    /// row Lᵢⱼ = zᵢⱼ sᵢⱼ with sᵢⱼ = Πₖ₍ⱼ √(1 − zᵢₖ²) (and Lᵢᵢ = sᵢᵢ), so for z = tanh u:
    /// Gᵢⱼ sᵢⱼ (1 − zᵢⱼ²) − zᵢⱼ Σ_{k&gt;j} Gᵢₖ Lᵢₖ − zᵢⱼ (i − j + 1), 0-based.
    /// </summary>
    public static Tensor CholeskyCorrelationGradient(Tensor u, Tensor l, Tensor gradient)
    {
        var k = l.shape[^1];
        var below = tril_indices(k, k, -1, device: u.device);
        var (rows, columns) = (below[0], below[1]);
        var z = zeros(new[] { k, k }, dtype: u.dtype, device: u.device).index_put_(u.tanh(), rows, columns);
        var logRemaining = (1 - z.square()).log();
        var s = (0.5 * (logRemaining.cumsum(-1) - logRemaining)).exp();
        var weighted = gradient * l;
        var after = weighted.flip(-1).cumsum(-1).flip(-1) - weighted;
        var position = arange(k, dtype: u.dtype, device: u.device);
        var full = gradient * s * (1 - z.square()) - z * after - z * (position.unsqueeze(1) - position + 1);
        return full.index(rows, columns);
    }

    /// <summary>The number of unconstrained values of a K × K Cholesky correlation factor.</summary>
    public static long CholeskyCorrelationSize(long k) => k * (k - 1) / 2;

    private static Tensor FromPartialCorrelations(Tensor z, out Tensor logScale)
    {
        var k = (long)Math.Round((1 + Math.Sqrt(1 + 8.0 * z.shape[^1])) / 2);
        var one = ones(Array.Empty<long>(), dtype: z.dtype, device: z.device);
        var rows = new List<Tensor> { cat(new[] { one.unsqueeze(0), zeros(k - 1, dtype: z.dtype, device: z.device) }) };
        logScale = zeros(Array.Empty<long>(), dtype: z.dtype, device: z.device);
        var index = 0;
        for (var i = 1; i < k; i++)
        {
            var entries = new List<Tensor>();
            var used = zeros(Array.Empty<long>(), dtype: z.dtype, device: z.device);
            for (var j = 0; j < i; j++)
            {
                var left = (1 - used).sqrt();
                logScale = logScale + left.log();
                var value = z[index++] * left;
                entries.Add(value);
                used = used + value.square();
            }
            entries.Add((1 - used).sqrt());
            if (i < k - 1) entries.Add(zeros(k - 1 - i, dtype: z.dtype, device: z.device));
            rows.Add(cat(entries.Select(e => e.dim() == 0 ? e.unsqueeze(0) : e).ToArray()));
        }
        return stack(rows.ToArray());
    }

    private static PriorArgument Width(PriorArgument low, PriorArgument high) =>
        low.Tensor is null && high.Tensor is null ? high.Value - low.Value : Difference(high, low);

    private static Tensor Difference(PriorArgument high, PriorArgument low) =>
        high.Tensor is { } h ? (low.Tensor is { } l ? h - l : h - low.Value) : high.Value - low.Tensor!;

    private static Tensor Plus(Tensor x, PriorArgument a) => a.Tensor is { } t ? x + t : a.Value == 0 ? x : x + a.Value;

    private static Tensor Minus(Tensor x, PriorArgument a) => a.Tensor is { } t ? x - t : a.Value == 0 ? x : x - a.Value;

    private static Tensor Times(Tensor x, PriorArgument a) => a.Tensor is { } t ? x * t : x * a.Value;

    private static Tensor Divide(Tensor x, PriorArgument a) => a.Tensor is { } t ? x / t : x / a.Value;
}
