using Posteriors.Optim;
using Posteriors.Continual;
using Posteriors.Curvature;
using Posteriors.Ekf;
using Posteriors.Laplace;
using Posteriors.Serialization;
using Posteriors.Trees;
using Posteriors.Vi;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>A way of learning the tasks in sequence, keeping whatever it carries from one task to the next.</summary>
internal abstract class ContinualMethod
{
    public abstract string Name { get; }

    /// <summary>The parameters used for prediction (the posterior mean for Gaussian methods).</summary>
    public abstract ParameterTree PredictiveMean { get; }

    public abstract void Reset(ParameterTree initial);

    public abstract void Learn(SplitTask task, Generator generator, Action onStep);

    public abstract void Save(string path);

    public abstract void Load(string path, Device device);

    /// <summary>Optimizer steps per task (for the progress bar).</summary>
    public virtual long StepsPerTask(SplitTask task, SplitFashionMnist.Settings s) => task.TrainCount / s.BatchSize * s.Epochs;
}

internal static class FashionMnistMethods
{
    public static IReadOnlyList<ContinualMethod> All(SplitFashionMnist.Settings settings, nn.Module<Tensor, Tensor> mlp) => new ContinualMethod[]
    {
        new SgdFineTuning(settings, mlp),
        new SequentialLaplace(settings, mlp),
        new SequentialEkf(settings, mlp),
        new SequentialVi(settings, mlp),
    };

    /// <summary>The per-datum log-likelihood of a task (the curvature methods' input; the prior enters as their initial precision).</summary>
    public static PerDatumLogDensity<(Tensor X, Tensor Y)> PerDatum(nn.Module<Tensor, Tensor> mlp, SplitTask task) =>
        (p, batch) => SplitFashionMnist.LogLikelihoods(mlp, p, batch.X, batch.Y, task);
}

/// <summary>Plain fine-tuning: MAP with SGD on each task in turn under a fixed N(0, 1) prior; the baseline that forgets.</summary>
internal sealed class SgdFineTuning(SplitFashionMnist.Settings settings, nn.Module<Tensor, Tensor> mlp) : ContinualMethod
{
    private ParameterTree _mean = null!;

    public override string Name => "SGD";

    public override ParameterTree PredictiveMean => _mean;

    public override void Reset(ParameterTree initial) => _mean = initial.Clone();

    public override void Learn(SplitTask task, Generator generator, Action onStep) =>
        _mean = SplitFashionMnist.Fit(mlp, _mean, task, SplitFashionMnist.StandardNormalLogPrior, settings, generator, onStep);

    public override void Save(string path) => StateFile.Save(path, new ParameterSnapshot(_mean));

    public override void Load(string path, Device device) => _mean = StateFile.Load<ParameterSnapshot>(path, device).Parameters;
}

/// <summary>
/// Sequential diagonal Laplace: MAP under the previous task's Laplace posterior as prior (precision scaled by λ),
/// then the runtime's diagonal empirical-Fisher Laplace at the new mode, started from the previous precision, so
/// the precision accumulates Σ over all tasks' data (the first task's prior is N(0, 1)).
/// </summary>
internal sealed class SequentialLaplace(SplitFashionMnist.Settings settings, nn.Module<Tensor, Tensor> mlp) : ContinualMethod
{
    private LaplacePrior _prior = null!;
    private ParameterTree _initial = null!;
    private bool _started;

    public override string Name => "Laplace";

    /// <summary>The last mode; before the first task, the initial parameters (the prior's mean is zero).</summary>
    public override ParameterTree PredictiveMean => _started ? _prior.Mean : _initial;

    public override void Reset(ParameterTree initial)
    {
        _initial = initial.Clone();
        _prior = new LaplacePrior(initial.ZerosLike(), initial.OnesLike(), 1);
        _started = false;
    }

    public override void Learn(SplitTask task, Generator generator, Action onStep)
    {
        // Start from the previous mode (or the random initialisation: all-zero weights would leave every ReLU dead).
        var start = PredictiveMean.Clone();
        var prior = _prior.WithLambda(settings.Lambda);
        var mode = SplitFashionMnist.Fit(mlp, start, task, prior.LogProb, settings, generator, onStep);
        var laplace = DiagFisher.Build(FashionMnistMethods.PerDatum(mlp, task), initPrecision: _prior.Precision, module: mlp);
        var state = laplace.Init(mode);
        var n = task.TrainCount;
        for (long s = 0; s < n; s += 500)
        {
            using var scope = NewDisposeScope();
            var len = Math.Min(500, n - s);
            state = laplace.Update(state, (task.TrainX.narrow(0, s, len), task.TrainY.narrow(0, s, len)), inplace: true);
        }
        _prior = new LaplacePrior(state.Params, state.Precision, 1);
        _started = true;
    }

    public override void Save(string path) => StateFile.Save(path, _prior);

    public override void Load(string path, Device device)
    {
        _prior = StateFile.Load<LaplacePrior>(path, device);
        _started = true;
    }
}

/// <summary>
/// The runtime's diagonal extended Kalman filter run straight through the task sequence: its Gaussian state after one
/// task is the prior of the next by construction (no transition noise).
/// </summary>
internal sealed class SequentialEkf(SplitFashionMnist.Settings settings, nn.Module<Tensor, Tensor> mlp) : ContinualMethod
{
    private ParameterTree _initial = null!;
    private DiagEkfState? _state;

    public override string Name => "EKF";

    public override ParameterTree PredictiveMean => _state?.Params ?? _initial;

    public override void Reset(ParameterTree initial)
    {
        _initial = initial.Clone();
        _state = null;
    }

    public override void Learn(SplitTask task, Generator generator, Action onStep)
    {
        // initSd 1 is the N(0, 1) prior of the other methods.
        var ekf = DiagEkf.Build(FashionMnistMethods.PerDatum(mlp, task), lr: settings.EkfLr, initSd: 1, module: mlp);
        var state = _state ?? ekf.Init(_initial);
        foreach (var batch in SplitFashionMnist.Batches(task, settings.BatchSize, settings.Epochs, generator))
        {
            using var scope = NewDisposeScope();
            state = ekf.Update(state, batch, inplace: true);
            onStep();
        }
        _state = state;
    }

    public override void Save(string path) => StateFile.Save(path, _state!);

    public override void Load(string path, Device device) => _state = StateFile.Load<DiagEkfState>(path, device);
}

/// <summary>
/// Sequential variational inference: each task fits a diagonal Gaussian q with the runtime's VI under the previous
/// task's q as the prior, N(μ_prev, σ_prev²) (N(0, 1) on the first task); μ starts at the previous mean.
/// </summary>
internal sealed class SequentialVi(SplitFashionMnist.Settings settings, nn.Module<Tensor, Tensor> mlp) : ContinualMethod
{
    private ParameterTree _mean = null!;
    private ParameterTree _sd = null!;

    public override string Name => "VI";

    public override ParameterTree PredictiveMean => _mean;

    public override void Reset(ParameterTree initial)
    {
        _mean = initial.Clone();
        _sd = initial.OnesLike();
    }

    public override void Learn(SplitTask task, Generator generator, Action onStep)
    {
        var priorMean = _mean.Clone();
        var priorSd = _sd.Clone();
        var logPosterior = SplitFashionMnist.LogPosterior(mlp, task, p => DiagNormal.LogProb(p, priorMean, priorSd, normalize: false));
        // T = 1/N: the log posterior is batch-normalised (docs/ALGORITHMS.md §1), so this targets the Bayesian posterior.
        var vi = DiagVi.Build(logPosterior, Optimizer.Adam(lr: settings.ViLr), temperature: 1.0 / task.TrainCount, initLogSd: -3);
        var state = vi.Init(_mean, seed: task.Index + 1);
        foreach (var batch in SplitFashionMnist.Batches(task, settings.BatchSize, settings.Epochs, generator))
        {
            using var scope = NewDisposeScope();
            state = vi.Update(state, batch, inplace: true);
            onStep();
        }
        _mean = state.Params.Clone();
        _sd = DiagVi.Sd(state).Clone();
    }

    public override void Save(string path) => StateFile.Save(path, new ParameterSnapshot(_mean, _sd));

    public override void Load(string path, Device device)
    {
        var s = StateFile.Load<ParameterSnapshot>(path, device);
        _mean = s.Parameters;
        _sd = s.Extra ?? throw new InvalidDataException($"'{path}' holds no standard deviations.");
    }
}
