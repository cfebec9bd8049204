using Posteriors.Models;
using Posteriors.Models.Data;
using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>Data, model and the training/evaluation loops every method shares.</summary>
public sealed class StudyContext
{
    /// <summary>Creates the context; the data are moved to <paramref name="device"/>.</summary>
    public StudyContext(StudyOptions options, ImageDataSet train, ImageDataSet test, ImageDataSet ood, Device device)
    {
        Options = options;
        Device = device;
        Train = train.To(device);
        Test = test.To(device);
        Ood = ood.To(device);
        var (c1, c2, h) = options.Widths!.Value;
        Widths = (c1, c2, h);
        Model = NewModel(0);
        Posterior = new ClassificationPosterior(Model, Train.Count, SmallCnn.DefaultPriorSd);
    }

    /// <summary>The resolved options.</summary>
    public StudyOptions Options { get; }

    /// <summary>Where tensors live.</summary>
    public Device Device { get; }

    /// <summary>Training data.</summary>
    public ImageDataSet Train { get; }

    /// <summary>Test data (in distribution).</summary>
    public ImageDataSet Test { get; }

    /// <summary>Out-of-distribution inputs (labels unused).</summary>
    public ImageDataSet Ood { get; }

    /// <summary>CNN widths.</summary>
    public (int C1, int C2, int Hidden) Widths { get; }

    /// <summary>The CNN every method evaluates through (bound to each method's parameters in turn).</summary>
    public SmallCnn Model { get; }

    /// <summary>log π of the CNN on the training set: mean categorical log-likelihood + N(0, 1) prior / N.</summary>
    public ClassificationPosterior Posterior { get; }

    /// <summary>N.</summary>
    public long N => Train.Count;

    /// <summary>Steps per epoch at the study's batch size.</summary>
    public long StepsPerEpoch => Train.StepsPerEpoch(BatchSize);

    /// <summary>Mini-batch size (resolved).</summary>
    public int BatchSize => Options.BatchSize!.Value;

    /// <summary>Training epochs per run (resolved).</summary>
    public int Epochs => Options.Epochs!.Value;

    /// <summary>Members of ensembles and parallel chains (resolved).</summary>
    public int Members => Options.Members!.Value;

    /// <summary>Steps of a run of <see cref="StudyOptions.Epochs"/> epochs.</summary>
    public long TrainingSteps => Epochs * StepsPerEpoch;

    /// <summary>A freshly initialised CNN from <paramref name="seed"/>.</summary>
    public SmallCnn NewModel(int seed)
    {
        manual_seed(seed);
        var model = new SmallCnn(Train.Classes, Widths.C1, Widths.C2, Widths.Hidden);
        model.to(Device);
        return model;
    }

    /// <summary>Initial parameters from <paramref name="seed"/> (PyTorch's default initialisation).</summary>
    public ParameterTree InitialParameters(int seed)
    {
        using var model = NewModel(seed);
        return ParameterTree.FromModule(model).Clone();
    }

    /// <summary>Shuffled training batches for <paramref name="epochs"/> epochs, the order fixed by <paramref name="seed"/>.</summary>
    public IEnumerable<(Tensor X, Tensor Y)> Batches(int seed, int? epochs = null) =>
        Train.Batches(BatchSize, epochs ?? Epochs, new Generator((ulong)(1_000_003L * seed + 17)));

    /// <summary>Where training checkpoints go (one state file per training phase); null: no checkpoints.</summary>
    public string? CheckpointFolder { get; init; }

    /// <summary>Stops training at the next step, after writing a checkpoint (Ctrl-C).</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>The key of the run in progress (<see cref="StudyRunner.RunKey"/>): names its checkpoints.</summary>
    public string RunKey { get; set; } = "run";

    /// <summary>
    /// Runs <paramref name="transform"/> over the training batches, one in-place update per batch, reporting progress and
    /// calling <paramref name="afterStep"/> after each step (step index from 0). The state starts from
    /// <paramref name="init"/>, or from the checkpoint <paramref name="checkpoint"/> when one exists: that one is
    /// written at the end of every epoch and when <see cref="Stop"/> is signalled, and the batches already used are
    /// skipped in the same order, so a resumed run takes the same steps as an uninterrupted one.
    /// </summary>
    /// <exception cref="OperationCanceledException"><see cref="Stop"/> was signalled (the checkpoint is written first).</exception>
    public TState Run<TState>(ITransform<TState, (Tensor X, Tensor Y)> transform, Func<TState> init, int seed, string checkpoint,
        Action<long, string> progress, Action<TState, long>? afterStep = null, int? epochs = null)
        where TState : IAlgorithmState, Posteriors.Serialization.IPersistentState<TState>
    {
        var path = CheckpointPath(checkpoint);
        var state = path is not null && File.Exists(path) ? StateFile.Load<TState>(path, Device) : init();
        var start = state.Step;
        var total = (epochs ?? Epochs) * StepsPerEpoch;
        var reportEvery = Math.Max(1, StepsPerEpoch / 20);
        long step = 0;
        if (start < total)
        {
            foreach (var batch in Batches(seed, epochs))
            {
                if (step < start)
                {
                    // Already taken before the checkpoint: drawn (to keep the shuffling's order) and dropped.
                    batch.X.Dispose();
                    batch.Y.Dispose();
                    step++;
                    continue;
                }
                using (NewDisposeScope())
                {
                    state = transform.Update(state, batch, inplace: true);
                }
                afterStep?.Invoke(state, step);
                step++;
                if (path is not null && (step % StepsPerEpoch == 0 || Stop.IsCancellationRequested)) StateFile.Save(path, state);
                Stop.ThrowIfCancellationRequested();
                if (step % reportEvery == 0) progress(step, $"log π {state.LogPosterior.item<float>():F3}");
            }
        }
        progress(total, start >= total ? "from its checkpoint" : $"log π {state.LogPosterior.item<float>():F3}");
        return state;
    }

    /// <summary>The checkpoint file of <paramref name="name"/> (e.g. a run's or a seed's MAP), or null without a checkpoint folder.</summary>
    public string? CheckpointPath(string name) => CheckpointFolder is null ? null : Path.Combine(CheckpointFolder, name + ".state");

    /// <summary>MAP by Adam on log π from the initialisation of <paramref name="seed"/> (the prior acts as weight decay).</summary>
    public ParameterTree TrainMap(int seed, Action<long, string> progress, double lr = 1e-3)
    {
        var transform = TorchOptim.Build(Posterior.LogPosterior, ps => optim.AdamW(ps, lr: lr, weight_decay: 0));
        var state = Run(transform, () => transform.Init(InitialParameters(seed)), seed, $"map-seed{seed}", progress);
        return state.Params.Clone();
    }

    private readonly Dictionary<int, ParameterTree> _maps = new();

    /// <summary>
    /// The MAP estimate of <paramref name="seed"/>, trained on first use and cached (Laplace and VI start from it, so the
    /// MAP row and the Laplace rows of a seed share one optimisation).
    /// </summary>
    public ParameterTree Map(int seed, Action<long, string> progress)
    {
        if (!_maps.TryGetValue(seed, out var map))
        {
            using (NewDisposeScope()) map = TrainMap(seed, progress).MoveToOuterDisposeScope();
            map.DetachFromDisposeScope();
            _maps[seed] = map;
        }
        return map;
    }

    private readonly Dictionary<string, ParameterTree> _cache = new();

    /// <summary>A tree computed once per key (e.g. a Laplace precision shared by every τ) and kept for the study.</summary>
    public ParameterTree Cached(string key, Func<ParameterTree> compute)
    {
        if (!_cache.TryGetValue(key, out var value))
        {
            using (NewDisposeScope()) value = compute().MoveToOuterDisposeScope();
            value.DetachFromDisposeScope();
            _cache[key] = value;
        }
        return value;
    }

    /// <summary>Draws from approximate posteriors for prediction (VI, Laplace).</summary>
    public int PredictiveDraws => Math.Max(10, Members);

    /// <summary>Log predictive probabilities [N, C] of the parameters on <paramref name="data"/>.</summary>
    public Tensor LogProbs(ParameterTree parameters, ImageDataSet data)
    {
        using var _ = no_grad();
        var parts = new List<Tensor>();
        foreach (var (x, _) in data.Sequential(1000))
        {
            // Each chunk's activations (≈ 100 MB for the full CNN) die here, not at the end of the run: 10,000 test and
            // OOD images × 5 members once held 13 GB.
            using var scope = NewDisposeScope();
            parts.Add(Posterior.LogProbabilities(parameters, x).MoveToOuterDisposeScope());
        }
        return cat(parts, 0);
    }

    /// <summary>Log-probabilities of S parameter sets on the test and OOD sets, stacked [S, ·, C].</summary>
    public MethodOutput Predict(IEnumerable<ParameterTree> members)
    {
        var test = new List<Tensor>();
        var ood = new List<Tensor>();
        foreach (var m in members)
        {
            test.Add(LogProbs(m, Test));
            ood.Add(LogProbs(m, Ood));
        }
        return new MethodOutput(stack(test), stack(ood));
    }
}
