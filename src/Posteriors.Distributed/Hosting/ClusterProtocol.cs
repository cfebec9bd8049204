using StackExchange.Redis;

namespace Posteriors.Distributed.Hosting;

/// <summary>
/// The version of what silos and clients exchange (grain interfaces, specs, state files). Every silo records it in Redis
/// under its service id when it starts; a silo or client of another version is refused with a message instead of
/// failing later inside a grain call.
/// </summary>
public static class ClusterProtocol
{
    /// <summary>This build's protocol: raise it when a grain interface, a spec or the state-file layout changes.</summary>
    public const int Version = 2;

    /// <summary>The Redis key that holds the protocol of <paramref name="serviceId"/>'s cluster.</summary>
    public static string Key(string serviceId) => $"posteriors:{serviceId}:protocol";

    /// <summary>
    /// Records this build's protocol for <paramref name="serviceId"/> (first silo), or checks it against the recorded one.
    /// </summary>
    /// <exception cref="IncompatibleClusterException">The cluster runs another protocol.</exception>
    public static async Task EnsureCompatibleAsync(IDatabase redis, string serviceId, string address, bool register)
    {
        ArgumentNullException.ThrowIfNull(redis);
        var key = Key(serviceId);
        if (register) await redis.StringSetAsync(key, Version, when: When.NotExists);
        var recorded = await redis.StringGetAsync(key);
        if (recorded.IsNull)
        {
            if (register) throw new InvalidOperationException($"Redis at {address} did not keep key '{key}'.");
            return; // no silo has started yet; the client's connection attempt will say so
        }
        if ((int)recorded != Version)
            throw new IncompatibleClusterException(
                $"The Posteriors cluster '{serviceId}' at {address} runs protocol version {(int)recorded}; this {(register ? "silo" : "client")} " +
                $"speaks version {Version}. Stop the cluster's silos (./scripts/cluster.sh down) and start silos of one build, or use another " +
                $"service id; Redis keeps the recorded version until its key '{key}' is deleted (redis-cli DEL) once no silo of the old build runs.");
    }
}

/// <summary>A silo or client of another protocol version than the cluster's.</summary>
public sealed class IncompatibleClusterException(string message) : Exception(message);

/// <summary>No cluster answered at the given address in time.</summary>
public sealed class ClusterUnreachableException(string message, Exception? inner = null) : Exception(message, inner);
