using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Tests.Sgmcmc;
using Posteriors.Trees;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Tests.Optim;

/// <summary>The functional optimizers of docs/ALGORITHMS.md §3.1 follow torch.optim's recursions, through MAP.</summary>
public class OptimizerTests
{
    private static Tensor Loss(Tensor w) => (w.square() * tensor(new[] { 1.0, 3.0, 0.5 })).sum() + w.sin().sum() + w.prod();

    private static readonly LogPosterior<int> LogPosterior = (p, _) => -Loss(p["w"]);

    public static IEnumerable<TestCaseData> Pairs()
    {
        yield return new TestCaseData(Optimizer.Sgd(0.05), (Func<Parameter, optim.Optimizer>)(p => optim.SGD(new[] { p }, 0.05))).SetName("SGD");
        yield return new TestCaseData(Optimizer.Sgd(0.05, momentum: 0.9, dampening: 0.3, weightDecay: 0.01),
            (Func<Parameter, optim.Optimizer>)(p => optim.SGD(new[] { p }, 0.05, momentum: 0.9, dampening: 0.3, weight_decay: 0.01))).SetName("SGD with momentum, dampening and weight decay");
        yield return new TestCaseData(Optimizer.Adam(0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.01),
            (Func<Parameter, optim.Optimizer>)(p => optim.Adam(new[] { p }, 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.01))).SetName("Adam");
    }

    [TestCaseSource(nameof(Pairs))]
    public void MapFollowsTorchsTrajectoryTo1e6(Optimizer optimizer, Func<Parameter, optim.Optimizer> torchOptimizer)
    {
        var w0 = tensor(new[] { 0.8, -1.2, 0.4 });
        var map = Map.Build(LogPosterior, optimizer);
        var state = map.Init(ParameterTree.From(("w", w0)));
        var parameter = new Parameter(w0.clone(), requires_grad: true);
        var reference = torchOptimizer(parameter);
        for (var t = 0; t < 100; t++)
        {
            reference.zero_grad();
            Loss(parameter).backward();
            reference.step();
            state = map.Update(state, 0, inplace: true);
            var difference = (state.Params["w"] - parameter.detach()).abs().max().item<double>();
            Assert.That(difference, Is.LessThan(1e-6), $"step {t}: {state.Params["w"].Str()} vs {parameter.Str()}");
        }
    }

    [Test]
    public void MapInPlaceCopyingAndResumedRunsAreBitIdentical()
    {
        var map = Map.Build(LogPosterior, Optimizer.Adam(0.05));
        var start = ParameterTree.From(("w", tensor(new[] { 0.8, -1.2, 0.4 })));
        MapState a = map.Init(start), b = map.Init(start);
        for (var t = 0; t < 5; t++)
        {
            a = map.Update(a, 0, inplace: true);
            var before = b.Params["w"].clone();
            var next = map.Update(b, 0);
            Assert.That(b.Params["w"].Same(before), Is.True, "copying left the old state untouched");
            b = next;
        }
        Assert.That(a.Params["w"].Same(b.Params["w"]), Is.True, $"{a.Params["w"].Str()} vs {b.Params["w"].Str()}");
        var path = Path.Combine(Path.GetTempPath(), $"map-{Guid.NewGuid():N}.pst");
        try
        {
            StateFile.Save(path, a);
            var resumed = map.Run(StateFile.Load<MapState>(path), Enumerable.Repeat(0, 5));
            var uninterrupted = map.Run(a, Enumerable.Repeat(0, 5));
            Assert.That(resumed.Params["w"].Same(uninterrupted.Params["w"]), Is.True, "the moments were saved");
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void BadHyperparametersAndAStateOfAnotherOptimizerFailClearly()
    {
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(lr: 0))!.ParamName, Is.EqualTo("lr"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Adam(beta1: 1))!.ParamName, Is.EqualTo("beta1"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer.Sgd(0.1, momentum: -0.5))!.ParamName, Is.EqualTo("momentum"));
        var start = ParameterTree.From(("w", tensor(new[] { 0.8, -1.2, 0.4 })));
        var sgdState = Map.Build(LogPosterior, Optimizer.Sgd(0.1, momentum: 0.5)).Init(start);
        var e = Assert.Throws<InvalidOperationException>(() => Map.Build(LogPosterior, Optimizer.Adam()).Update(sgdState, 0));
        Assert.That(e!.Message, Does.Contain("params.exp_avg"));
    }
}
