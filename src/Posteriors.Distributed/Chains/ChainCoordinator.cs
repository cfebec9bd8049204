using Orleans.Runtime;
using Posteriors.Sgmcmc;

namespace Posteriors.Distributed.Chains;

/// <summary>How the coordinator drives the members.</summary>
public enum Pacing
{
    /// <summary>Every member advances by one chunk, then all wait for the slowest (a common step count at every report).</summary>
    Lockstep,

    /// <summary>Every member advances chunk after chunk on its own (no waiting; faster on uneven silos).</summary>
    FreeRunning,
}

/// <summary>A run of K members.</summary>
/// <param name="Run">The run's name: member k is grain <c>Run/k</c>, and a coordinator restarted with the same spec reattaches.</param>
/// <param name="Members">K.</param>
/// <param name="Model">The model.</param>
/// <param name="Sampler">The sampler.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Steps">Steps per member.</param>
/// <param name="CheckpointEvery">C.</param>
/// <param name="Chunk">Steps per call (a report per chunk; a call must finish within the cluster's response timeout).</param>
/// <param name="Pacing">Lockstep or free-running.</param>
public sealed record RunSpec(string Run, int Members, ModelSpec Model, SamplerSpec Sampler, long Seed, long Steps,
    long CheckpointEvery = 50, long Chunk = 10, Pacing Pacing = Pacing.Lockstep)
{
    /// <summary>Member k's spec.</summary>
    public ChainSpec Member(int k) => new ChainSpec(Run, k, Model, Sampler, Seed, Steps, CheckpointEvery).Validated();
}

/// <summary>A finished run: every member's final state and the trace of (member, step, log π) reports.</summary>
/// <param name="States">Member k's final state (on the CPU), of the run's sampler (e.g. <see cref="SghmcState"/>).</param>
/// <param name="Trace">Every progress report received, in arrival order.</param>
/// <param name="Retries">How many calls were repeated after a silo failure.</param>
public sealed record RunResult(IReadOnlyList<SgmcmcState> States, IReadOnlyList<ChainProgress> Trace, int Retries);

/// <summary>
/// Drives K chain grains from a client: starts (or reattaches to) the members, advances them in chunks, streams their
/// progress, repeats a call whose silo died (the member reactivates elsewhere from its checkpoint, and recomputes
/// exactly what was lost), and collects final states and predictions.
/// </summary>
public sealed class ChainCoordinator
{
    private readonly IGrainFactory _grains;
    private int _retries;

    /// <summary>A coordinator over <paramref name="grains"/> (an <see cref="IClusterClient"/>).</summary>
    public ChainCoordinator(IGrainFactory grains) => _grains = grains ?? throw new ArgumentNullException(nameof(grains));

    /// <summary>How often one call is repeated after a silo failure before the run gives up.</summary>
    public int MaxRetries { get; init; } = 20;

    /// <summary>The wait before a repeated call (membership needs a moment to declare a dead silo).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Member k's grain.</summary>
    public IChainGrain Member(string run, int k) => _grains.GetGrain<IChainGrain>(ChainSpec.ChainKey(run, k));

    /// <summary>
    /// Runs <paramref name="spec"/> to the end: members that exist under its name continue from where they are (a resumed
    /// run), unless <paramref name="fresh"/> resets them to step 0 first.
    /// </summary>
    /// <exception cref="CheckpointException">Grain storage refused a checkpoint: the run stops; run it again to resume.</exception>
    public async Task<RunResult> RunAsync(RunSpec spec, IProgress<ChainProgress>? progress = null, bool fresh = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Members < 1) throw new ArgumentOutOfRangeException(nameof(spec), spec.Members, "A run needs at least one member (RunSpec.Members).");
        if (spec.Chunk < 1) throw new ArgumentOutOfRangeException(nameof(spec), spec.Chunk, "RunSpec.Chunk must be at least one step.");
        var trace = new List<ChainProgress>();
        void Report(ChainProgress p)
        {
            lock (trace) trace.Add(p);
            progress?.Report(p);
        }

        var members = Enumerable.Range(0, spec.Members).ToArray();
        if (fresh) await Task.WhenAll(members.Select(k => Call(spec, k, async g => { await g.Reset(); return 0; }, cancellationToken)));
        var started = await Task.WhenAll(members.Select(k => Call(spec, k, g => g.Start(spec.Member(k)), cancellationToken)));
        foreach (var p in started) Report(p);

        if (spec.Pacing == Pacing.Lockstep)
        {
            for (var step = started.Min(p => p.Step); step < spec.Steps; step += spec.Chunk)
            {
                var until = Math.Min(spec.Steps, step + spec.Chunk);
                foreach (var p in await Task.WhenAll(members.Select(k => Call(spec, k, g => g.Advance(until), cancellationToken)))) Report(p);
            }
        }
        else
        {
            await Task.WhenAll(members.Select(async k =>
            {
                for (var step = started[k].Step; step < spec.Steps;)
                {
                    var p = await Call(spec, k, g => g.Advance(Math.Min(spec.Steps, step + spec.Chunk)), cancellationToken);
                    Report(p);
                    step = p.Step;
                }
            }));
        }

        var bytes = await Task.WhenAll(members.Select(k => Call(spec, k, g => g.State(), cancellationToken)));
        return new RunResult(bytes.Select(b => MemberSampler.Load(spec.Sampler.Kind, b)).ToArray(), trace, _retries);
    }

    /// <summary>Every member's log predictive probabilities on the model's test set.</summary>
    public Task<Prediction[]> PredictAsync(RunSpec spec, CancellationToken cancellationToken = default) =>
        Task.WhenAll(Enumerable.Range(0, spec.Members).Select(k => Call(spec, k, g => g.PredictTest(), cancellationToken)));

    /// <summary>
    /// Calls member k, repeating the call when its silo (or the gateway) was lost. A member that reactivates elsewhere
    /// has lost its in-memory state, so it is started again from its spec, which reloads its checkpoint.
    /// </summary>
    private async Task<T> Call<T>(RunSpec spec, int k, Func<IChainGrain, Task<T>> call, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                var grain = Member(spec.Run, k);
                // After a failure the member may be a fresh activation that never checkpointed: Start is a no-op otherwise.
                if (attempt > 0) await grain.Start(spec.Member(k));
                return await call(grain);
            }
            catch (Exception e) when (IsSiloFailure(e) && attempt < MaxRetries)
            {
                Interlocked.Increment(ref _retries);
                await Task.Delay(RetryDelay, cancellationToken);
            }
        }
    }

    /// <summary>Failures of the cluster (a silo or connection lost), as opposed to errors of the computation or of storage.</summary>
    public static bool IsSiloFailure(Exception e) =>
        e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException
            or Orleans.Runtime.Messaging.ConnectionFailedException or GatewayTooBusyException;
}
