using System.Globalization;
using Posteriors.Distributed;
using Posteriors.Ensembles;
using Posteriors.Samples;
using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;

namespace Posteriors.Cli.Study.Methods;

/// <summary>
/// SGHMC settings shared by the study's samplers: the T = 0 limit is torch SGD with learning rate η
/// (<see cref="StudyOptions.SgdLr"/>, default <see cref="DefaultSgdLr"/>) and momentum μ = 0.9, mapped by
/// <see cref="SghmcHyperparameters.FromSgd"/> (ε = 1, σ = η^(−1/2), α = (1 − μ)/η; docs/ALGORITHMS.md §2.6).
/// </summary>
public sealed record SghmcSettings(double SgdLr)
{
    /// <summary>η = 0.03: 0.05 at a constant step collapsed the small CNN to uniform predictions; 0.01 left it under-trained in the quick run's 920 steps.</summary>
    public const double DefaultSgdLr = 0.03;

    /// <summary>SGD momentum μ.</summary>
    public const double Momentum = 0.9;

    /// <summary>ε at the end of a parallel run, as a fraction of <see cref="Lr"/>.</summary>
    public const double FinalLrFraction = 0.1;

    /// <summary>The settings of a study.</summary>
    public static SghmcSettings For(StudyContext context) => new(context.Options.SgdLr!.Value);

    private SghmcHyperparameters Mapped => SghmcHyperparameters.FromSgd(SgdLr, Momentum);

    /// <summary>ε (1 for SGD without dampening).</summary>
    public double Lr => Mapped.Lr;

    /// <summary>σ = η^(−1/2).</summary>
    public double Sigma => Mapped.Sigma;

    /// <summary>α = (1 − μ)/η.</summary>
    public double Alpha => Mapped.Alpha;

    /// <summary>
    /// ε for the parallel runs: cosine annealing from <see cref="Lr"/> to <see cref="FinalLrFraction"/> of it over the run.
    /// Members kept at their final state are otherwise snapshots of a noisy constant-step trajectory; at T = 0 this is
    /// the learning-rate decay every deep ensemble uses (SGD lr η ε², momentum 1 − (1 − μ) ε), at T &gt; 0 SGHMC with
    /// decreasing step sizes.
    /// </summary>
    public Schedule AnnealedLr(long steps) => Schedule.Cosine(Lr, Lr * FinalLrFraction, steps);
}

/// <summary>
/// Parallel SGHMC: K chains from independent initialisations, each keeping its final state. At T = 0 this is a deep
/// ensemble of momentum-SGD runs; at T = τ/N each member is (asymptotically) a draw from the tempered posterior.
/// </summary>
public sealed class ParallelSghmcMethod : IStudyMethod
{
    private readonly bool _tempered;

    /// <summary>The tempered sampler (<paramref name="tempered"/>) or the deep ensemble (T = 0).</summary>
    public ParallelSghmcMethod(bool tempered) => _tempered = tempered;

    /// <inheritdoc />
    public string Name => _tempered ? "sghmc-parallel" : "ensemble";

    /// <inheritdoc />
    public string Description => _tempered
        ? "K parallel SGHMC chains at T = τ/N, final states"
        : "deep ensemble: K parallel SGHMC chains at T = 0 (momentum SGD), independent inits";

    /// <inheritdoc />
    public bool Tempered => _tempered;

    /// <inheritdoc />
    public long Steps(StudyContext context) => context.TrainingSteps;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var k = context.Members;
        var temperature = _tempered ? tau!.Value / context.N : 0.0;
        var settings = SghmcSettings.For(context);
        if (context.Options.Cluster is not null)
            return context.Predict(ClusterEnsemble.Run(context,
                new SamplerSpec(new ScheduleSpec(settings.Lr, settings.Lr * SghmcSettings.FinalLrFraction, context.TrainingSteps),
                    settings.Alpha, settings.Sigma, temperature, NoiseStream: context.Options.NoiseStream), seed, progress));
        var ensemble = Ensemble.Build(context.Posterior.LogPosterior, settings.AnnealedLr(context.TrainingSteps), settings.Alpha, settings.Sigma,
            temperature, momenta: InitialMomenta.Zero);
        ensemble.Sampler.NoiseStream = context.Options.NoiseStream;
        var state = context.Run(ensemble, () => ensemble.Init(k, member => context.InitialParameters(seed * 1000 + member + 1), seed), seed, context.RunKey,
            progress);
        return context.Predict(Ensemble<(TorchSharp.torch.Tensor, TorchSharp.torch.Tensor)>.Members(state));
    }
}

/// <summary>
/// Serial SGHMC: one chain at T = τ/N run for twice the epochs; the first half is burn-in, then K states are kept
/// evenly spaced (thinning) over the second half.
/// </summary>
public sealed class SerialSghmcMethod : IStudyMethod
{
    /// <inheritdoc />
    public string Name => "sghmc-serial";

    /// <inheritdoc />
    public string Description => "one SGHMC chain at T = τ/N, burn-in of E epochs, then K thinned samples over E more";

    /// <inheritdoc />
    public bool Tempered => true;

    /// <inheritdoc />
    public long Steps(StudyContext context) => 2 * context.TrainingSteps;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var k = context.Members;
        var burnIn = context.TrainingSteps;
        var thin = Math.Max(1, context.TrainingSteps / k);
        var settings = SghmcSettings.For(context);
        var sampler = Sghmc.Build(context.Posterior.LogPosterior, settings.Lr, settings.Alpha, sigma: settings.Sigma,
            temperature: tau!.Value / context.N, momenta: InitialMomenta.Zero);
        sampler.NoiseStream = context.Options.NoiseStream;
        // Samples kept before a checkpoint are files beside it (named by step), so a resumed chain keeps them.
        var key = context.RunKey;
        var folder = context.CheckpointFolder is { } checkpoints ? Path.Combine(checkpoints, key + "-samples") : null;
        var start = context.CheckpointPath(key) is { } path && File.Exists(path) ? StateFile.Load<SghmcState>(path).Step : 0;
        var samples = folder is null || !Directory.Exists(folder) ? new List<ParameterTree>()
            : Directory.GetFiles(folder, "step-*.state")
                .Select(f => (Step: long.Parse(Path.GetFileNameWithoutExtension(f)["step-".Length..], CultureInfo.InvariantCulture), File: f))
                .Where(f => f.Step < start).OrderBy(f => f.Step)
                .Select(f => StateFile.Load<ParameterSnapshot>(f.File, context.Device).Parameters).ToList();
        var state = context.Run(sampler, () => sampler.Init(context.InitialParameters(seed), seed), seed, key, progress,
            afterStep: (s, step) =>
            {
                // Keep the state at the end of each of the K equal stretches after burn-in.
                if (step >= burnIn && (step - burnIn + 1) % thin == 0 && samples.Count < k)
                {
                    samples.Add(s.Params.Clone());
                    if (folder is not null) StateFile.Save(Path.Combine(folder, $"step-{step}.state"), new ParameterSnapshot(samples[^1]));
                }
            },
            epochs: 2 * context.Epochs);
        if (samples.Count == 0) samples.Add(state.Params.Clone());
        return context.Predict(samples);
    }
}
