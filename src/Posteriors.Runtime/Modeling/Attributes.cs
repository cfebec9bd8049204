namespace Posteriors.Modeling;

/// <summary>
/// Marks a <c>partial</c> class as a Bayesian model. The source generator adds the batch-normalised log posterior
/// (docs/ALGORITHMS.md §1), the log prior, the parameter tree and prior draws, implementing <see cref="IModel{TBatch}"/>.
/// </summary>
/// <remarks>
/// Parameters are the instance fields and properties of type <c>Tensor</c> or of a TorchSharp module type. Each has
/// a <see cref="PriorAttribute"/> (or <see cref="FixedAttribute"/> when it is data, not a parameter). Exactly one
/// method carries <see cref="LikelihoodAttribute"/> or <see cref="ForwardAttribute"/>.
/// </remarks>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class ModelAttribute : Attribute
{
}

/// <summary>
/// The prior of a parameter member. On a module member, every parameter of the module gets it independently
/// (tree names such as <c>Fc1.weight</c>). Priors apply elementwise and are summed over the elements.
/// </summary>
/// <remarks>
/// Each argument is a constant (<c>0</c>, <c>2.5</c>) or the name of a member (<c>nameof(Tau)</c>): another tensor
/// parameter, whose constrained value is used (a hierarchical prior, evaluated in dependency order and sampled
/// ancestrally), or a <see cref="HyperAttribute"/> member read at each evaluation. Tensor values broadcast against the
/// parameter. A cycle of names is a compile-time error (PST0013).
/// </remarks>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = true, Inherited = false)]
public sealed class PriorAttribute : Attribute
{
    /// <summary>A prior without arguments (<see cref="Distribution.Flat"/>).</summary>
    public PriorAttribute(Distribution distribution) => (Distribution, Arguments) = (distribution, Array.Empty<object>());

    /// <summary>A one-argument prior (HalfNormal(scale), HalfCauchy(scale), Exponential(rate)).</summary>
    /// <param name="distribution">The distribution.</param>
    /// <param name="a">A number or a member name (<c>nameof(Member)</c>).</param>
    public PriorAttribute(Distribution distribution, object a) => (Distribution, Arguments) = (distribution, new[] { a });

    /// <summary>A two-argument prior (Normal/Laplace/Cauchy/LogNormal(loc, scale), Gamma(shape, rate)).</summary>
    /// <param name="distribution">The distribution.</param>
    /// <param name="a">A number or a member name.</param>
    /// <param name="b">A number or a member name.</param>
    public PriorAttribute(Distribution distribution, object a, object b) => (Distribution, Arguments) = (distribution, new[] { a, b });

    /// <summary>A three-argument prior (StudentT(df, loc, scale)).</summary>
    /// <param name="distribution">The distribution.</param>
    /// <param name="a">A number or a member name.</param>
    /// <param name="b">A number or a member name.</param>
    /// <param name="c">A number or a member name.</param>
    public PriorAttribute(Distribution distribution, object a, object b, object c) => (Distribution, Arguments) = (distribution, new[] { a, b, c });

    /// <summary>The distribution.</summary>
    public Distribution Distribution { get; }

    /// <summary>The distribution's arguments (numbers or member names), in the order its documentation lists them.</summary>
    public IReadOnlyList<object> Arguments { get; }
}

/// <summary>
/// A hyperparameter: a <c>double</c> or <c>Tensor</c> member that prior arguments may name
/// (<c>[Prior(Distribution.Normal, 0, nameof(PriorScale))]</c>). It is read at every evaluation, so changing it changes
/// the log prior without recompiling (a prior-scale sweep); it is not learned and not in the parameter tree.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class HyperAttribute : Attribute
{
}

/// <summary>
/// A tensor parameter constrained to be positive. It is represented internally by u = log θ (the tree holds u under the
/// name <c>log_</c> + member name), and the log posterior includes the Jacobian term log |dθ/du| = Σ u, so samplers
/// and optimizers move freely in u and never leave the support.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class PositiveAttribute : Attribute
{
}

/// <summary>
/// A tensor parameter in the open interval (low, high): the tree holds u = logit((θ − low)/(high − low)) as
/// <c>logit_</c> + member name, and the log prior includes the log-Jacobian. Each bound is a number or the name of a
/// <see cref="HyperAttribute"/> member. Priors: Uniform with the same bounds, or Flat.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class BoundedAttribute : Attribute
{
    /// <summary>The interval (low, high).</summary>
    /// <param name="low">A number or a [Hyper] member name.</param>
    /// <param name="high">A number or a [Hyper] member name.</param>
    public BoundedAttribute(object low, object high) => (Low, High) = (low, high);

    /// <summary>The lower bound.</summary>
    public object Low { get; }

    /// <summary>The upper bound.</summary>
    public object High { get; }
}

/// <summary>A tensor parameter in (0, 1): <c>[Bounded(0, 1)]</c>. Priors: Beta, Uniform(0, 1), Flat.</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class UnitIntervalAttribute : Attribute
{
}

/// <summary>
/// A vector (the last dimension, K entries) on the probability simplex, by stick-breaking: the tree holds K − 1
/// unconstrained values as <c>stick_</c> + member name. Priors: Dirichlet, Flat.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class SimplexAttribute : Attribute
{
}

/// <summary>
/// An increasing vector (the last dimension): θ₁ = u₁, θₖ = θₖ₋₁ + exp(uₖ), held as <c>ordered_</c> + member name.
/// Priors: real-line priors (applied to every element, as in Stan) or Flat; prior draws are sorted iid draws.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class OrderedAttribute : Attribute
{
}

/// <summary>
/// The lower-triangular Cholesky factor [K, K] of a correlation matrix, held as K(K − 1)/2 unconstrained values
/// (<c>cpc_</c> + member name: canonical partial correlations through tanh). Priors: LkjCholesky, Flat.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class CholeskyCorrelationAttribute : Attribute
{
}

/// <summary>A tensor or module member that the model uses but does not learn (data, a frozen feature extractor).</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = false)]
public sealed class FixedAttribute : Attribute
{
}

/// <summary>
/// The per-datum log likelihood: an instance method whose parameters are one mini-batch (the batch type is a tuple of
/// them, or the single parameter's type) and that returns a <c>Tensor</c> of shape [B], one value per datum.
/// The generated log posterior averages it; do not sum or average over the batch yourself (PST0010).
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class LikelihoodAttribute : Attribute
{
}

/// <summary>
/// The model output for a structured likelihood: an instance method <c>Tensor M(Tensor x)</c> returning f(x; θ) (for
/// example logits) for a batch of inputs. The batch type is <c>(Tensor X, Tensor Y)</c> and the per-datum log
/// likelihood is <see cref="Likelihood"/> applied to f(x) and y. GGN Laplace and linearised predictives use the two parts.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class ForwardAttribute : Attribute
{
    /// <summary>A forward method with a Categorical or Bernoulli likelihood.</summary>
    public ForwardAttribute(OutputDistribution likelihood) => (Likelihood, Scale) = (likelihood, double.NaN);

    /// <summary>A forward method with a Normal likelihood of standard deviation <paramref name="scale"/>.</summary>
    public ForwardAttribute(OutputDistribution likelihood, double scale) => (Likelihood, Scale) = (likelihood, scale);

    /// <summary>
    /// A forward method with a Normal likelihood whose standard deviation is a learned <see cref="PositiveAttribute"/>
    /// tensor parameter (<c>nameof(NoiseScale)</c>, one element). The log posterior uses σ from the tree; the
    /// curvature interface (<c>Likelihood</c>, for GGN Laplace) uses the member's current value.
    /// </summary>
    public ForwardAttribute(OutputDistribution likelihood, string scaleMember) =>
        (Likelihood, Scale, ScaleMember) = (likelihood, double.NaN, scaleMember);

    /// <summary>The outer likelihood.</summary>
    public OutputDistribution Likelihood { get; }

    /// <summary>The Normal likelihood's standard deviation (NaN for the others and for a learned σ).</summary>
    public double Scale { get; }

    /// <summary>The parameter holding a learned σ, or null.</summary>
    public string? ScaleMember { get; }
}
