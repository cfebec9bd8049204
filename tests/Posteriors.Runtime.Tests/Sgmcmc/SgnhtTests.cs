using Posteriors.Diagnostics;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

public class SgnhtTests
{
    /// <summary>
    /// The thermostat's update ζ' = ζ + ε(σ⁻² mean(m²) − T) telescopes: (ζ_end − ζ_start)/(ε n) = time average of the
    /// kinetic temperature − T. ζ stays bounded, so the time-averaged kinetic temperature must equal T — up to
    /// |Δζ|/(ε n), which this test also bounds.
    /// </summary>
    [TestCase(0.25)]
    [TestCase(1.0)]
    public void ThermostatHoldsTheKineticTemperatureAtT(double temperature)
    {
        var target = new GaussianTarget(seed: 4);
        var sigma = Math.Sqrt(10);
        var sgnht = Sgnht.Build(target.LogPosterior, 0.1, alpha: 10, sigma: sigma, temperature: temperature, momenta: InitialMomenta.Zero);
        var state = sgnht.Init(ParameterTree.From(("theta", zeros(200, 2, dtype: ScalarType.Float64))), seed: 2);
        for (var t = 0; t < 500; t++) state = sgnht.Update(state, null, inplace: true);
        double sum = 0;
        const int n = 1000;
        for (var t = 0; t < n; t++)
        {
            sum += Convergence.KineticTemperature(state.Momenta, sigma);
            state = sgnht.Update(state, null, inplace: true);
        }
        Assert.That(sum / n / temperature, Is.EqualTo(1.0).Within(0.02));
        Assert.That(state.Xi.item<double>(), Is.GreaterThan(0), "the thermostat supplies friction");
    }

    [Test]
    public void ThermostatStartsAtAlphaUnlessGiven()
    {
        var target = new GaussianTarget(seed: 4);
        var p = ParameterTree.From(("theta", zeros(1, 2, dtype: ScalarType.Float64)));
        Assert.That(Sgnht.Build(target.LogPosterior, 0.1, alpha: 3).Init(p).Xi.item<double>(), Is.EqualTo(3));
        Assert.That(Sgnht.Build(target.LogPosterior, 0.1, alpha: 3, xi: 0.5).Init(p).Xi.item<double>(), Is.EqualTo(0.5));
    }
}
