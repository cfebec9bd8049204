using Posteriors.Curvature;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Gaussian;

/// <summary>The MLP the Gaussian benchmarks share, evaluated through a bound TorchSharp module (float32, CPU).</summary>
internal sealed class Mlp
{
    public Mlp(int hidden2 = 512, long batch = 32)
    {
        manual_seed(0);
        Module = nn.Sequential(("fc1", nn.Linear(784, 512)), ("act1", nn.ReLU()), ("fc2", nn.Linear(512, hidden2)), ("act2", nn.ReLU()),
            ("fc3", nn.Linear(hidden2, 10)));
        var forward = (nn.Module<Tensor, Tensor>)Module;
        Params = ParameterTree.FromModule(Module).Map(t => t.detach().clone());
        Batch = (randn(batch, 784), randint(0, 10, new[] { batch }));
        PerDatum = (p, b) =>
        {
            var wrt = ModuleBinding.Bind(Module, p);
            var ll = OutputLikelihood.Categorical.LogProb(forward.call(b.X), b.Y);
            return new LogDensityResult(ll + DiagNormal.LogProb(wrt, 0, 1, normalize: false) / 60_000, wrt: wrt);
        };
        LogPosterior = Curvature.PerDatum.Mean(PerDatum);
        Model = new ForwardModel<(Tensor X, Tensor Y)>((p, b) => new ModelOutput(forward.call(b.X), ModuleBinding.Bind(Module, p)), b => b.Y,
            OutputLikelihood.Categorical);
    }

    public nn.Module Module { get; }
    public ParameterTree Params { get; }
    public (Tensor X, Tensor Y) Batch { get; }
    public PerDatumLogDensity<(Tensor X, Tensor Y)> PerDatum { get; }
    public LogPosterior<(Tensor X, Tensor Y)> LogPosterior { get; }
    public IForwardModel<(Tensor X, Tensor Y)> Model { get; }
}
