using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Optim;

/// <summary>
/// A first-order optimizer whose moments live as tensors in the algorithm's state (docs/ALGORITHMS.md §3.1), so that
/// states copy, save and resume like any other: SGD with momentum and Adam, with the recursions of
/// <c>torch.optim.SGD</c> and <c>torch.optim.Adam</c>. It minimises: callers hand it the gradient of what is to be
/// made smaller. For any other TorchSharp optimizer, MAP has the adapter <see cref="TorchOptim"/>.
/// </summary>
public abstract class Optimizer
{
    private protected Optimizer(double lr, double weightDecay)
    {
        Lr = Check.Positive(lr, nameof(lr));
        WeightDecay = Check.NonNegative(weightDecay, "weightDecay");
    }

    /// <summary>The learning rate η.</summary>
    public double Lr { get; }

    /// <summary>The L2 penalty λ added to the gradient (λ θ).</summary>
    public double WeightDecay { get; }

    /// <summary>SGD: b ← h (first step) or μ b + (1 − τ) h, θ ← θ − η b (no buffer when μ = 0).</summary>
    /// <param name="lr">η &gt; 0.</param>
    /// <param name="momentum">μ in [0, 1).</param>
    /// <param name="dampening">τ in [0, 1].</param>
    /// <param name="weightDecay">λ ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static Optimizer Sgd(double lr, double momentum = 0, double dampening = 0, double weightDecay = 0) =>
        new SgdOptimizer(lr, InRange(momentum, nameof(momentum), upperOpen: true), InRange(dampening, nameof(dampening), upperOpen: false), weightDecay);

    /// <summary>Adam: m ← β₁ m + (1 − β₁) h, v ← β₂ v + (1 − β₂) h², θ ← θ − η m̂ / (sqrt(v̂) + ε) with bias-corrected m̂, v̂.</summary>
    /// <param name="lr">η &gt; 0.</param>
    /// <param name="beta1">β₁ in [0, 1).</param>
    /// <param name="beta2">β₂ in [0, 1).</param>
    /// <param name="eps">ε ≥ 0.</param>
    /// <param name="weightDecay">λ ≥ 0 (L2, added to the gradient).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static Optimizer Adam(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0) =>
        new AdamOptimizer(lr, InRange(beta1, nameof(beta1), upperOpen: true), InRange(beta2, nameof(beta2), upperOpen: true),
            Check.NonNegative(eps, nameof(eps)), weightDecay);

    /// <summary>The names of the moments kept per optimised field (e.g. "exp_avg" and "exp_avg_sq" for Adam).</summary>
    internal abstract IReadOnlyList<string> Moments { get; }

    /// <summary>The state field holding moment <paramref name="moment"/> of field <paramref name="field"/>.</summary>
    internal static string MomentField(string field, string moment) => field + "." + moment;

    /// <summary>Adds zero moments for field <paramref name="field"/> (a tree or a tensor) of a new state.</summary>
    internal void AddMoments(StateRecord fields, string field)
    {
        foreach (var moment in Moments)
        {
            if (fields.HasTree(field)) fields.Set(MomentField(field, moment), fields.GetTree(field).Map(t => zeros_like(t).DetachFromDisposeScope()));
            else fields.Set(MomentField(field, moment), zeros_like(fields.GetTensor(field)).DetachFromDisposeScope());
        }
    }

    /// <summary>
    /// One step on the leaves of field <paramref name="field"/> given <paramref name="gradients"/> (of the objective to
    /// minimise, in the leaves' order); <paramref name="t"/> counts steps from 1.
    /// </summary>
    /// <exception cref="InvalidOperationException">The state has no moments of this optimizer (built with another one).</exception>
    internal void Step(StateRecord fields, string field, IReadOnlyList<Tensor> gradients, long t)
    {
        var leaves = fields.TensorsOf(field);
        var moments = Moments.Select(m =>
        {
            var name = MomentField(field, m);
            if (!fields.Has(name))
                throw new InvalidOperationException(
                    $"The state has no '{name}': it was not made with this optimizer ({GetType().Name.Replace("Optimizer", "")}, moments {string.Join(", ", Moments)}).");
            return fields.TensorsOf(name);
        }).ToArray();
        using var _ = no_grad();
        for (var i = 0; i < leaves.Count; i++)
        {
            using var scope = NewDisposeScope();
            var h = WeightDecay == 0 ? gradients[i] : gradients[i].add(leaves[i], alpha: WeightDecay);
            StepLeaf(leaves[i], h, moments.Select(m => m[i]).ToArray(), t);
        }
    }

    /// <summary>The rule for one leaf θ with (weight-decayed) gradient h and its moments, in place.</summary>
    private protected abstract void StepLeaf(Tensor theta, Tensor h, Tensor[] moments, long t);

    private static double InRange(double value, string name, bool upperOpen)
    {
        if (!(value >= 0 && (upperOpen ? value < 1 : value <= 1)))
            throw new ArgumentOutOfRangeException(name, value, $"'{name}' must lie in [0, 1{(upperOpen ? ")" : "]")}.");
        return value;
    }

    private sealed class SgdOptimizer(double lr, double momentum, double dampening, double weightDecay) : Optimizer(lr, weightDecay)
    {
        private static readonly string[] Buffer = { "momentum_buffer" };

        internal override IReadOnlyList<string> Moments => momentum == 0 ? Array.Empty<string>() : Buffer;

        private protected override void StepLeaf(Tensor theta, Tensor h, Tensor[] moments, long t)
        {
            if (momentum == 0)
            {
                theta.add_(h, alpha: -Lr);                                           // θ ← θ − η h
                return;
            }
            var b = moments[0];
            if (t == 1) b.copy_(h);                                                  // b ← h on the first step
            else b.mul_(momentum).add_(h, alpha: 1 - dampening);                     // b ← μ b + (1 − τ) h
            theta.add_(b, alpha: -Lr);                                               // θ ← θ − η b
        }
    }

    private sealed class AdamOptimizer(double lr, double beta1, double beta2, double eps, double weightDecay) : Optimizer(lr, weightDecay)
    {
        private static readonly string[] Names = { "exp_avg", "exp_avg_sq" };

        internal override IReadOnlyList<string> Moments => Names;

        private protected override void StepLeaf(Tensor theta, Tensor h, Tensor[] moments, long t)
        {
            Tensor m = moments[0], v = moments[1];
            m.mul_(beta1).add_(h, alpha: 1 - beta1);                                 // m ← β₁ m + (1 − β₁) h
            v.mul_(beta2).addcmul_(h, h, value: 1 - beta2);                          // v ← β₂ v + (1 − β₂) h²
            var denominator = (v.sqrt() / Math.Sqrt(1 - Math.Pow(beta2, t))).add_(eps);
            theta.addcdiv_(m, denominator, value: -Lr / (1 - Math.Pow(beta1, t)));   // θ ← θ − η m̂ / (sqrt(v̂) + ε)
        }
    }
}
