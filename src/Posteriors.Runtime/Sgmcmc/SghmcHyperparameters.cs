namespace Posteriors.Sgmcmc;

/// <summary>
/// SGHMC's step size ε, friction α and momentum scale σ: pass them to <see cref="Sghmc.Build{TBatch}"/> (or to
/// <see cref="Ensembles.Ensemble"/>) as <c>lr</c>, <c>alpha</c> and <c>sigma</c>.
/// </summary>
/// <param name="Lr">Step size ε.</param>
/// <param name="Alpha">Friction α.</param>
/// <param name="Sigma">Momentum scale σ.</param>
public readonly record struct SghmcHyperparameters(double Lr, double Alpha, double Sigma)
{
    /// <summary>
    /// The SGHMC whose T = 0 limit is torch's SGD with learning rate η, momentum μ and dampening d:
    /// ε = 1 − d, σ = ((1 − d)/η)^(1/2), α = (1 − μ)/η. Then ε σ⁻² = η and the momentum recursion
    /// m' = (1 − ε σ⁻² α) m + ε g = μ m + (1 − d) g is torch's momentum buffer, so θ' = θ + η m is SGD's heavy-ball step
    /// (θ moves with the momenta before the gradient step, so the iterates trail SGD's by one step). At T &gt; 0 the same settings add the noise of the
    /// tempered posterior, so a tuned SGD run becomes a sampler by choosing T.
    /// </summary>
    /// <param name="lr">SGD's learning rate η (positive).</param>
    /// <param name="momentum">SGD's momentum μ, in [0, 1).</param>
    /// <param name="dampening">SGD's dampening d, in [0, 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its range or not finite.</exception>
    public static SghmcHyperparameters FromSgd(double lr, double momentum, double dampening = 0)
    {
        Check.Positive(lr, nameof(lr));
        if (!(momentum >= 0 && momentum < 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"Hyperparameter 'momentum' is {momentum}; it must be in [0, 1).");
        if (!(dampening >= 0 && dampening < 1))
            throw new ArgumentOutOfRangeException(nameof(dampening), dampening, $"Hyperparameter 'dampening' is {dampening}; it must be in [0, 1).");
        // σ as 1/√(η/(1 − d)): without dampening exactly the 1/√η the samples used before this factory.
        return new SghmcHyperparameters(1 - dampening, (1 - momentum) / lr, 1 / Math.Sqrt(lr / (1 - dampening)));
    }
}
