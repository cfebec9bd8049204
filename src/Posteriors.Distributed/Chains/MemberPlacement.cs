using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Posteriors.Distributed.Chains;

/// <summary>
/// Member k of a run goes to silo k mod S of the S compatible silos (ordered by address), so K members spread evenly
/// however fast they are started; when a silo dies, its members move to the survivors by the same rule. Shard k of a data
/// set likewise. Placement never changes what a member computes, only where.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class MemberPlacement : PlacementStrategy;

/// <summary>Places a grain with <see cref="MemberPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class MemberPlacementAttribute() : PlacementAttribute(new MemberPlacement());

/// <summary>Chooses silo (index after the last '/' of the grain key) mod S.</summary>
public sealed class MemberPlacementDirector : IPlacementDirector
{
    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        if (silos.Length == 0) throw new OrleansException($"No silo can host {target.GrainIdentity}.");
        var key = target.GrainIdentity.Key.ToString() ?? "";
        var slash = key.LastIndexOf('/');
        var index = slash >= 0 && int.TryParse(key.AsSpan(slash + 1), out var k) ? k : Math.Abs(key.GetHashCode(StringComparison.Ordinal));
        return Task.FromResult(silos[index % silos.Length]);
    }
}
