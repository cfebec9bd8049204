using Posteriors.Continual;
using Posteriors.Curvature;
using Posteriors.Ekf;
using Posteriors.Laplace;
using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using Posteriors.Vi;
using static TorchSharp.torch;

namespace Posteriors.Tests.Serialization;

/// <summary>
/// One small, deterministic state of every persistent kind, built through the public API (Init and two updates on a
/// tiny Gaussian target). The files under Fixtures/ were written from these recipes by the library as it was when the
/// format of each kind was introduced (<c>scripts/state-fixtures.sh</c>); the tests load them with the current library
/// and compare every field with the recipe run again now. The SGLD, SGHMC, SGNHT and BAOA files of version 1 were
/// rewritten when the samplers' step noise moved to the Philox generator: their values are the recipes' trajectories,
/// which depend on the noise. Version 2 of the SGMCMC kinds records the noise generator: a version-1 file loads as
/// <see cref="NoiseStream.PhiloxBoxMuller"/> and matches the recipe run with it, a version-2 file the recipe run with
/// the generator it records.
/// </summary>
internal static class StateFixtures
{
    /// <summary>log π(θ) = −½ Σ (θ − 1)² (float64, a 2×2 and a 1-element leaf), the same for every datum of a batch.</summary>
    private static readonly LogPosterior<int> Gaussian = (p, _) => p.SumOf(t => (t - 1.0).square()) * -0.5;

    private static readonly PerDatumLogDensity<int> PerDatum = (p, b) => (p.SumOf(t => (t - 1.0).square()) * -0.5).expand(b).add(arange(b, dtype: float64) * 0.1);

    public static ParameterTree Start() =>
        ParameterTree.From(("w", tensor(new[,] { { 0.5, -0.25 }, { 2.0, 0.0 } }, dtype: float64)), ("b", tensor(new[] { -1.5 }, dtype: float64)));

    private static TState Run<TState>(ITransform<TState, int> transform, TState state, int steps = 2) where TState : IAlgorithmState
    {
        for (var i = 0; i < steps; i++) state = transform.Update(state, 3, inplace: true);
        return state;
    }

    public static SgldState Sgld(NoiseStream noiseStream = StepNoise.Default) { var t = Posteriors.Sgmcmc.Sgld.Build(Gaussian, 0.1, temperature: 0.5); t.NoiseStream = noiseStream; return Run(t, t.Init(Start(), 7)); }
    public static SghmcState Sghmc(NoiseStream noiseStream = StepNoise.Default) => Sghmc(noiseStream, steps: 2);
    public static SghmcState Sghmc(NoiseStream noiseStream, int steps) { var t = SghmcTransform(); t.NoiseStream = noiseStream; return Run(t, t.Init(Start(), 7), steps); }
    public static Sghmc<int> SghmcTransform() => Posteriors.Sgmcmc.Sghmc.Build(Gaussian, 0.1, alpha: 0.5, temperature: 0.5);
    public static SgnhtState Sgnht(NoiseStream noiseStream = StepNoise.Default) { var t = Posteriors.Sgmcmc.Sgnht.Build(Gaussian, 0.1, alpha: 0.5, temperature: 0.5); t.NoiseStream = noiseStream; return Run(t, t.Init(Start(), 7)); }
    public static BaoaState Baoa(NoiseStream noiseStream = StepNoise.Default) { var t = Posteriors.Sgmcmc.Baoa.Build(Gaussian, 0.1, alpha: 0.5, temperature: 0.5); t.NoiseStream = noiseStream; return Run(t, t.Init(Start(), 7)); }
    public static SglrwState Sglrw(NoiseStream noiseStream = StepNoise.Default) { var t = Posteriors.Sgmcmc.Sglrw.Build(Gaussian, 0.1, temperature: 0.5); t.NoiseStream = noiseStream; return Run(t, t.Init(Start(), 7)); }

    public static DiagLaplaceState DiagLaplace() { var t = Posteriors.Laplace.DiagFisher.Build(PerDatum, 0.5, subset: new[] { "w" }); return Run(t, t.Init(Start())); }
    public static DenseLaplaceState DenseLaplace() { var t = Posteriors.Laplace.DenseFisher.Build(PerDatum, 0.5); return Run(t, t.Init(Start())); }
    public static KfacLaplaceState KfacLaplace()
    {
        var module = nn.Linear(2, 2, dtype: float64);
        var model = new ForwardModel<int>((p, b) =>
        {
            var wrt = ModuleBinding.Bind(module, p);
            return new ModelOutput(module.call(arange(2 * b, dtype: float64).reshape(b, 2) * 0.1), wrt);
        }, b => arange(b) % 2, OutputLikelihood.Categorical);
        var t = Posteriors.Laplace.Kfac.Build(model, module, 0.5);
        return Run(t, t.Init(ParameterTree.From(("weight", tensor(new[,] { { 0.5, -0.25 }, { 2.0, 0.0 } }, dtype: float64)), ("bias", tensor(new[] { -1.5, 0.3 }, dtype: float64))), 7));
    }
    public static DiagEkfState DiagEkf() { var t = Posteriors.Ekf.DiagEkf.Build(PerDatum, 0.1, transitionSd: 0.1); return Run(t, t.Init(Start())); }
    public static DenseEkfState DenseEkf() { var t = Posteriors.Ekf.DenseEkf.Build(PerDatum, 0.1, transitionSd: 0.1); return Run(t, t.Init(Start())); }

    public static DiagViState DiagVi() { var t = Posteriors.Vi.DiagVi.Build(Gaussian, Optimizer.Adam(lr: 0.05), temperature: 0.5); return Run(t, t.Init(Start(), 7)); }
    public static DenseViState DenseVi() { var t = Posteriors.Vi.DenseVi.Build(Gaussian, Optimizer.Adam(lr: 0.05), temperature: 0.5); return Run(t, t.Init(Start(), 7)); }
    public static MapState Map() { var t = Posteriors.Optim.Map.Build(Gaussian, Optimizer.Sgd(0.05, momentum: 0.9, dampening: 0.1)); return Run(t, t.Init(Start())); }
    public static TorchOptimState TorchOptim() { var t = Posteriors.Optim.TorchOptim.Build(Gaussian, ps => optim.Adam(ps, lr: 0.05)); return Run(t, t.Init(Start())); }

    public static LaplacePrior LaplacePrior() => new(Start(), Start().Map(t => t.abs() + 0.5), 2.0);

    /// <summary>Writes every kind's fixture into <paramref name="directory"/> as "&lt;Kind&gt;.v&lt;KindVersion&gt;.state".</summary>
    public static void WriteAll(string directory)
    {
        Write(directory, Sgld()); Write(directory, Sghmc()); Write(directory, Sgnht()); Write(directory, Baoa()); Write(directory, Sglrw());
        Write(directory, DiagLaplace()); Write(directory, DenseLaplace()); Write(directory, KfacLaplace()); Write(directory, DiagEkf()); Write(directory, DenseEkf());
        Write(directory, DiagVi()); Write(directory, DenseVi()); Write(directory, TorchOptim()); Write(directory, Map()); Write(directory, LaplacePrior());
    }

    private static void Write<TState>(string directory, TState state) where TState : IPersistentState<TState> =>
        StateFile.Save(Path.Combine(directory, $"{TState.Kind}.v{TState.KindVersion}.state"), state);
}
