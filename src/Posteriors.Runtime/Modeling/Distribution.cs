// This file is linked into Posteriors.Generators (netstandard2.0, no TorchSharp): keep it a plain enum.
namespace Posteriors.Modeling
{
    /// <summary>
    /// The prior distributions a <see cref="PriorAttribute"/> can name. The arguments each takes are listed per member;
    /// scales, rates, shapes and degrees of freedom must be positive and finite (checked at compile time, PST0004).
    /// </summary>
    public enum Distribution
    {
        /// <summary>An improper flat prior: log p(θ) = 0. No arguments. Says explicitly that a parameter has no prior.</summary>
        Flat = 0,

        /// <summary>Normal(loc, scale). Arguments: loc, scale.</summary>
        Normal = 1,

        /// <summary>Laplace(loc, scale): density exp(−|θ − loc| / scale) / (2 scale). Arguments: loc, scale.</summary>
        Laplace = 2,

        /// <summary>Student's t(df, loc, scale). Arguments: df, loc, scale.</summary>
        StudentT = 3,

        /// <summary>Cauchy(loc, scale). Arguments: loc, scale.</summary>
        Cauchy = 4,

        /// <summary>Half-normal(scale) on θ &gt; 0. Argument: scale. Requires <see cref="PositiveAttribute"/>.</summary>
        HalfNormal = 5,

        /// <summary>Half-Cauchy(scale) on θ &gt; 0. Argument: scale. Requires <see cref="PositiveAttribute"/>.</summary>
        HalfCauchy = 6,

        /// <summary>Log-normal(loc, scale) on θ &gt; 0: log θ ~ Normal(loc, scale). Arguments: loc, scale. Requires <see cref="PositiveAttribute"/>.</summary>
        LogNormal = 7,

        /// <summary>Gamma(shape, rate) on θ &gt; 0: density ∝ θ^(shape−1) e^(−rate θ). Arguments: shape, rate. Requires <see cref="PositiveAttribute"/>.</summary>
        Gamma = 8,

        /// <summary>Exponential(rate) on θ &gt; 0. Argument: rate. Requires <see cref="PositiveAttribute"/>.</summary>
        Exponential = 9,

        /// <summary>Uniform(low, high). Arguments: low, high. Requires <see cref="BoundedAttribute"/> with the same bounds.</summary>
        Uniform = 10,

        /// <summary>Beta(alpha, beta) on (0, 1). Arguments: alpha, beta. Requires <see cref="UnitIntervalAttribute"/>.</summary>
        Beta = 11,

        /// <summary>Dirichlet(concentration) on the simplex (the last dimension). Argument: concentration. Requires <see cref="SimplexAttribute"/>.</summary>
        Dirichlet = 12,

        /// <summary>
        /// LKJ(concentration) on the Cholesky factor of a correlation matrix, normalising constant included. Argument:
        /// concentration (η; 1 is uniform over correlation matrices). Requires <see cref="CholeskyCorrelationAttribute"/>.
        /// </summary>
        LkjCholesky = 13,
    }

    /// <summary>
    /// The outer likelihood of a <see cref="ForwardAttribute"/> model: how the forward output f(x; θ) scores a target y.
    /// The generated model exposes it as a <c>Posteriors.Curvature.OutputLikelihood</c> (GGN Laplace, linearised predictives).
    /// </summary>
    public enum OutputDistribution
    {
        /// <summary>f is a row of class logits, y an int64 class index: log softmax(f)[y].</summary>
        Categorical = 0,

        /// <summary>f holds logits, y values in [0, 1]: y log σ(f) + (1 − y) log σ(−f), summed over the non-batch dimensions.</summary>
        Bernoulli = 1,

        /// <summary>y ~ Normal(f, σ²) with a fixed σ (the attribute's second argument), summed over the non-batch dimensions.</summary>
        Normal = 2,
    }
}
