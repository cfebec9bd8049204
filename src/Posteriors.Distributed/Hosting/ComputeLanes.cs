namespace Posteriors.Distributed.Hosting;

/// <summary>
/// A silo's compute budget: its grains run their tensor work through it, at most <see cref="Lanes"/> pieces at a time
/// (each with the silo's torch threads), first come first served. Without it every member placed on a silo steps on its
/// own thread-pool thread at once, so two members on each of two single-threaded silos put four busy threads on two
/// cores, and their working sets (parameters, momenta, gradients: 11 MB per member of the MLP 784-512-512-10) evict
/// each other from the shared cache. One silo per core with one lane each keeps one member's step per core.
/// </summary>
public sealed class ComputeLanes
{
    private readonly SemaphoreSlim _free;

    /// <summary>A budget of <paramref name="lanes"/> concurrent pieces of work.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lanes"/> is not positive.</exception>
    public ComputeLanes(int lanes = 1)
    {
        if (lanes < 1) throw new ArgumentOutOfRangeException(nameof(lanes), lanes, "A silo needs at least one compute lane.");
        Lanes = lanes;
        _free = new SemaphoreSlim(lanes, lanes);
    }

    /// <summary>How many pieces of work run at once.</summary>
    public int Lanes { get; }

    /// <summary>Runs <paramref name="work"/> on a thread-pool thread once a lane is free (off the grain's turn).</summary>
    public async Task<T> Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        await _free.WaitAsync();
        try { return await Task.Run(work); }
        finally { _free.Release(); }
    }

    /// <summary>Runs <paramref name="work"/> once a lane is free.</summary>
    public Task Run(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return Run(() =>
        {
            work();
            return true;
        });
    }
}
