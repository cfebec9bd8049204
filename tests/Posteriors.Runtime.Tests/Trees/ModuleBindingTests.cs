using Posteriors.Testing;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Trees;

public class ModuleBindingTests
{
    [Test]
    public void GradientThroughABoundModuleEqualsTheFunctionalGradient()
    {
        manual_seed(3);
        var module = nn.Sequential(("fc1", nn.Linear(3, 4)), ("act", nn.Tanh()), ("fc2", nn.Linear(4, 1)));
        var x = randn(5, 3);
        var values = ParameterTree.FromModule(module).Map(t => t.detach().clone() + 0.1);

        LogPosterior<Tensor> viaModule = (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new LogDensityResult(((nn.Module<Tensor, Tensor>)module).call(batch).sum(), wrt: wrt);
        };
        LogPosterior<Tensor> functional = (p, batch) =>
            nn.functional.linear(nn.functional.linear(batch, p["fc1.weight"], p["fc1.bias"]).tanh(), p["fc2.weight"], p["fc2.bias"]).sum();

        var a = Autodiff.ValueAndGrad(viaModule, values, x);
        var b = Autodiff.ValueAndGrad(functional, values, x);
        Assert.That(a.Value.item<float>(), Is.EqualTo(b.Value.item<float>()).Within(1e-6));
        for (var i = 0; i < values.Count; i++)
        {
            TensorAssert.Close(a.Gradient.Leaves[i], b.Gradient.Leaves[i], 1e-6, 1e-7, values.Names[i]);
            TensorAssert.Finite(a.Gradient.Leaves[i], values.Names[i]);
        }
    }

    [Test]
    public void BindingSharesStorageInsteadOfCopying()
    {
        var module = nn.Linear(2, 1);
        var values = ParameterTree.FromModule(module).Map(t => zeros_like(t));
        ModuleBinding.Bind(module, values);
        values["weight"].add_(2.0);
        Assert.That(module.weight!.sum().item<float>(), Is.EqualTo(4.0f));
    }

    [Test]
    public void UnknownNameOrWrongShapeIsReportedByName()
    {
        var module = nn.Linear(2, 1);
        var e = Assert.Throws<ArgumentException>(() => ModuleBinding.Bind(module, ParameterTree.From(("weights", zeros(1, 2)))));
        Assert.That(e!.Message, Does.Contain("'weights'"));
        e = Assert.Throws<ArgumentException>(() => ModuleBinding.Bind(module, ParameterTree.From(("weight", zeros(2, 2)))));
        Assert.That(e!.Message, Does.Contain("'weight'").And.Contain("[2, 2]"));
    }
}
