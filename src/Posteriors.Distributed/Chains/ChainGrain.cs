using Microsoft.Extensions.Logging;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using Posteriors.Sgmcmc;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Chains;

/// <summary>See <see cref="IChainGrain"/>.</summary>
[MemberPlacement]
public sealed class ChainGrain : Grain, IChainGrain, IDisposable
{
    /// <summary>The grain storage provider that holds checkpoints (Redis in a deployment).</summary>
    public const string StorageName = "posteriors-checkpoints";

    private readonly IPersistentState<ChainCheckpoint> _checkpoint;
    private readonly ModelCatalog _catalog;
    private readonly ComputeLanes _lanes;
    private readonly ILogger<ChainGrain> _log;
    private ChainSpec? _spec;
    private DistributedModel? _model;
    private MemberSampler? _sampler;
    private SgmcmcState? _state;
    private long _restoredFrom = -1;

    /// <summary>Created by Orleans.</summary>
    public ChainGrain([PersistentState("chain", StorageName)] IPersistentState<ChainCheckpoint> checkpoint, ModelCatalog catalog,
        ComputeLanes lanes, ILogger<ChainGrain> log)
    {
        (_checkpoint, _catalog, _lanes, _log) = (checkpoint, catalog, lanes, log);
    }

    /// <inheritdoc />
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A member that checkpointed before (its silo died, or it was collected when idle) continues from its last state.
        if (_checkpoint.State.Spec is { } spec && _checkpoint.State.State is { } bytes)
        {
            Build(spec);
            _state = MemberSampler.Load(spec.Sampler.Kind, bytes);
            _restoredFrom = _state.Step;
            _log.LogInformation("Member {Key} resumed from its checkpoint at step {Step} on {Silo}", spec.Key, _state.Step, RuntimeIdentity);
        }
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<ChainProgress> Start(ChainSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validated();
        if (spec.Key != this.GetPrimaryKeyString())
            throw new ArgumentException($"Spec of member '{spec.Key}' sent to grain '{this.GetPrimaryKeyString()}'.", nameof(spec));
        if (_spec is not null)
            return _spec.SameAs(spec)
                ? Report()
                : throw new InvalidOperationException(
                    $"Member '{spec.Key}' already runs with another spec ({_spec.Model}, seed {_spec.Seed}, {_spec.Steps} steps); use a new run name.");
        Build(spec);
        _state = await _lanes.Run(() =>
        {
            using var scope = NewDisposeScope();
            var initial = _model!.InitialParameters(spec.Seed, spec.Member);
            return _sampler!.Init(initial, spec.Seed, spec.Member);
        });
        await Checkpoint();
        return Report();
    }

    /// <inheritdoc />
    public async Task<ChainProgress> Advance(long untilStep)
    {
        var (spec, state) = Started();
        var target = Math.Min(untilStep, spec.Steps);
        while (state.Step < target)
        {
            // Run to the next checkpoint boundary (or the target) on the silo's compute lane, then checkpoint.
            var stop = Math.Min(target, (state.Step / spec.CheckpointEvery + 1) * spec.CheckpointEvery);
            await _lanes.Run(() =>
            {
                while (state.Step < stop)
                {
                    using var scope = NewDisposeScope();
                    _sampler!.Step(state, _model!.Batch(spec.Seed, state.Step), spec.Member);
                }
            });
            if (state.Step % spec.CheckpointEvery == 0 || state.Step == spec.Steps) await Checkpoint();
        }
        return Report();
    }

    /// <inheritdoc />
    public Task<ChainProgress> Progress() => Task.FromResult(Report());

    /// <inheritdoc />
    public async Task Reset()
    {
        try
        {
            await _checkpoint.ClearStateAsync();
        }
        catch (Exception e)
        {
            throw new CheckpointException(
                $"Member '{this.GetPrimaryKeyString()}' could not delete its checkpoint from grain storage '{StorageName}' " +
                $"({e.GetType().Name}: {e.Message}); nothing was stepped and its stored state is unchanged.", e);
        }
        _checkpoint.State = new ChainCheckpoint();
        _model?.Dispose();
        (_spec, _model, _sampler, _state, _restoredFrom) = (null, null, null, null, -1);
    }

    /// <inheritdoc />
    public Task<byte[]> State() => Task.FromResult(MemberSampler.Save(Started().State));

    /// <inheritdoc />
    public Task<Prediction> PredictTest()
    {
        var (_, state) = Started();
        var x = _model!.TestX ?? throw new InvalidOperationException($"Model '{_spec!.Model.Name}' has no test set.");
        return _lanes.Run(() =>
        {
            using var scope = NewDisposeScope();
            var logProbs = _model.LogProbabilities(state.Params, x);
            return new Prediction((int)logProbs.shape[0], (int)logProbs.shape[1], TreeWire.ToBytes(logProbs));
        });
    }

    private (ChainSpec Spec, SgmcmcState State) Started() =>
        _spec is not null && _state is not null
            ? (_spec, _state)
            : throw new InvalidOperationException($"Member '{this.GetPrimaryKeyString()}' has not been started (call Start first).");

    private void Build(ChainSpec spec)
    {
        _model = _catalog.Build(spec.Model);
        _sampler = MemberSampler.Build(_model.LogPosterior, spec.Sampler);
        _spec = spec;
    }

    private async Task Checkpoint()
    {
        var (spec, state) = Started();
        var previous = (_checkpoint.State.State, _checkpoint.State.Step, _checkpoint.State.Spec);
        _checkpoint.State.Spec = spec;
        _checkpoint.State.State = MemberSampler.Save(state);
        _checkpoint.State.Step = state.Step;
        try
        {
            await _checkpoint.WriteStateAsync();
        }
        catch (Exception e)
        {
            (_checkpoint.State.State, _checkpoint.State.Step, _checkpoint.State.Spec) = previous;
            throw new CheckpointException(
                $"Member '{spec.Key}' could not write its checkpoint at step {state.Step} to grain storage '{StorageName}' " +
                $"({e.GetType().Name}: {e.Message}); " +
                (previous.State is null ? "it had written no checkpoint before." : $"the checkpoint of step {previous.Step} is intact."), e);
        }
    }

    private ChainProgress Report()
    {
        var (spec, state) = Started();
        return new ChainProgress(spec.Member, state.Step, state.LogPosterior.item<float>(), _checkpoint.State.Step, RuntimeIdentity, _restoredFrom);
    }

    /// <inheritdoc />
    public void Dispose() => _model?.Dispose();
}
