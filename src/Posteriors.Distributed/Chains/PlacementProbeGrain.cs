namespace Posteriors.Distributed.Chains;

/// <summary>
/// A stateless grain placed like a member (<see cref="MemberPlacement"/>) that says where it runs: probes whether new
/// members would spread over every silo (see <see cref="Hosting.ClusterConnection.WaitForSilosAsync"/>).
/// </summary>
public interface IPlacementProbeGrain : IGrainWithStringKey
{
    /// <summary>The silo this activation runs on.</summary>
    Task<string> Silo();
}

/// <summary>See <see cref="IPlacementProbeGrain"/>.</summary>
[MemberPlacement]
public sealed class PlacementProbeGrain : Grain, IPlacementProbeGrain
{
    /// <inheritdoc />
    public Task<string> Silo()
    {
        // Nothing to keep: gone as soon as the probe has its answer.
        DeactivateOnIdle();
        return Task.FromResult(RuntimeIdentity);
    }
}
