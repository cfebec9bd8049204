using Posteriors.Sgmcmc;
using Posteriors.Testing;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

public class SghmcHyperparametersTests
{
    [Test]
    public void FromSgdGivesTheStepFrictionAndScaleOfTheMapping()
    {
        var h = SghmcHyperparameters.FromSgd(lr: 0.04, momentum: 0.9, dampening: 0.5);
        Assert.That(h.Lr, Is.EqualTo(0.5));
        Assert.That(h.Alpha, Is.EqualTo(0.1 / 0.04).Within(1e-12));
        Assert.That(h.Sigma, Is.EqualTo(Math.Sqrt(0.5 / 0.04)).Within(1e-12));
        // ε σ⁻² is SGD's learning rate and 1 − ε σ⁻² α its momentum.
        Assert.That(h.Lr / (h.Sigma * h.Sigma), Is.EqualTo(0.04).Within(1e-12));
        Assert.That(1 - h.Lr / (h.Sigma * h.Sigma) * h.Alpha, Is.EqualTo(0.9).Within(1e-12));
    }

    [TestCase(0.0, 0.9, 0.0, "lr")]
    [TestCase(-0.1, 0.9, 0.0, "lr")]
    [TestCase(0.1, 1.0, 0.0, "momentum")]
    [TestCase(0.1, -0.1, 0.0, "momentum")]
    [TestCase(0.1, 0.9, 1.0, "dampening")]
    [TestCase(0.1, double.NaN, 0.0, "momentum")]
    public void OutOfRangeValuesAreRejectedByName(double lr, double momentum, double dampening, string name)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SghmcHyperparameters.FromSgd(lr, momentum, dampening));
        Assert.That(e!.ParamName, Is.EqualTo(name));
    }

    /// <summary>
    /// From zero momenta, T = 0 SGHMC with the mapped settings lands on torch SGD's iterates one step later. θ moves
    /// with the momenta before the gradient step, so SGHMC feeds SGD's recursion the previous iterate's gradient; a
    /// linear objective (constant gradient) makes the two recursions coincide exactly (SghmcTests covers the lag).
    /// </summary>
    [Test]
    public void ZeroTemperatureSghmcFollowsTorchSgd()
    {
        static Tensor Loss(Tensor w) => (w * tensor(new[] { 1.0, -3.0, 0.5 })).sum();
        var h = SghmcHyperparameters.FromSgd(lr: 0.05, momentum: 0.8);
        var w0 = tensor(new[] { 0.8, -1.2, 0.4 });
        var sghmc = Sghmc.Build<object?>((p, _) => -Loss(p["w"]), h.Lr, alpha: h.Alpha, sigma: h.Sigma, temperature: 0.0, momenta: InitialMomenta.Zero);
        var state = sghmc.Init(ParameterTree.From(("w", w0)));
        state = sghmc.Update(state, null, inplace: true);

        var parameter = new TorchSharp.Modules.Parameter(w0.clone(), requires_grad: true);
        var sgd = optim.SGD(new[] { parameter }, 0.05, momentum: 0.8);
        for (var t = 0; t < 50; t++)
        {
            sgd.zero_grad();
            Loss(parameter).backward();
            sgd.step();
            state = sghmc.Update(state, null, inplace: true);
            TensorAssert.Close(state.Params["w"], parameter.detach(), 1e-9, 1e-9, $"step {t}");
            TensorAssert.Finite(state.Params["w"], $"step {t}");
        }
    }
}
