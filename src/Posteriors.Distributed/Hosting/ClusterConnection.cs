using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Posteriors.Distributed.Hosting;

/// <summary>A client's connection to a Posteriors cluster whose membership lives in Redis at <c>host:port</c>.</summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    /// <summary>The default cluster and service id of <c>scripts/cluster.sh</c>.</summary>
    public const string DefaultId = "posteriors";

    private readonly IHost _host;

    private ClusterConnection(IHost host, string address) => (_host, Address) = (host, address);

    /// <summary>The membership address (Redis) this connection uses.</summary>
    public string Address { get; }

    /// <summary>The Orleans client.</summary>
    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    /// <summary>
    /// Connects to the cluster whose membership is in Redis at <paramref name="address"/>, within <paramref name="timeout"/>
    /// (8 s by default, so that the error arrives within 10 s with the host's shutdown).
    /// </summary>
    /// <exception cref="ClusterUnreachableException">Redis or every silo failed to answer in time; the message names the address.</exception>
    /// <exception cref="IncompatibleClusterException">The cluster runs another protocol version.</exception>
    public static async Task<ClusterConnection> ConnectAsync(string address, string clusterId = DefaultId, string serviceId = DefaultId,
        TimeSpan? timeout = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        var limit = timeout ?? TimeSpan.FromSeconds(8);
        using var deadline = new CancellationTokenSource(limit);
        var options = PosteriorsSilo.RedisOptions(address);
        options.ConnectTimeout = (int)Math.Min(options.ConnectTimeout, limit.TotalMilliseconds / 3);
        try
        {
            // A refused or unroutable address fails here at once (the Redis client would retry until its timeout).
            foreach (var endPoint in options.EndPoints)
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                using var probe = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
                probe.CancelAfter(limit / 3);
                await tcp.ConnectAsync(HostOf(endPoint), PortOf(endPoint), probe.Token);
            }
            await using (var redis = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(deadline.Token))
                await ClusterProtocol.EnsureCompatibleAsync(redis.GetDatabase(), serviceId, address, register: false);
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException or OperationCanceledException or TimeoutException
                                       or System.Net.Sockets.SocketException)
        {
            throw new ClusterUnreachableException(
                $"No Posteriors cluster at {address}: its membership store (Redis) did not answer within {limit.TotalSeconds:0} s. " +
                "Start one with ./scripts/cluster.sh up N, or check the address.", e);
        }

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client =>
        {
            client.UseRedisClustering(o => o.ConfigurationOptions = PosteriorsSilo.RedisOptions(address));
            client.Configure<Orleans.Configuration.ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (clusterId, serviceId));
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync(deadline.Token);
        }
        catch (Exception e)
        {
            host.Dispose();
            throw new ClusterUnreachableException(
                $"No silo of cluster '{clusterId}' at {address} accepted a connection within {limit.TotalSeconds:0} s " +
                $"({e.GetType().Name}: {e.Message}). Start silos with ./scripts/cluster.sh up N.", e);
        }
        return new ClusterConnection(host, address);
    }

    private static string HostOf(System.Net.EndPoint endPoint) => endPoint switch
    {
        System.Net.DnsEndPoint d => d.Host,
        System.Net.IPEndPoint ip => ip.Address.ToString(),
        _ => throw new ArgumentException($"Unsupported Redis end point {endPoint}.", nameof(endPoint)),
    };

    private static int PortOf(System.Net.EndPoint endPoint) => endPoint switch
    {
        System.Net.DnsEndPoint d => d.Port == 0 ? 6379 : d.Port,
        System.Net.IPEndPoint ip => ip.Port == 0 ? 6379 : ip.Port,
        _ => throw new ArgumentException($"Unsupported Redis end point {endPoint}.", nameof(endPoint)),
    };

    /// <summary>
    /// Waits until <paramref name="count"/> silos are active members and new members would spread over them. A silo
    /// listens on its gateway a moment before it has joined, and after joining, a silo places new grains only among the
    /// silos whose grain types it has learnt, which lags membership by a moment more: members placed in between all land
    /// on the silos already in. So this probes: <paramref name="count"/> throwaway grains placed like members 0…count−1
    /// until they answer from <paramref name="count"/> different silos.
    /// </summary>
    /// <exception cref="TimeoutException">After <paramref name="timeout"/>, fewer silos were active, or new members still
    /// landed on fewer silos; the message says how many.</exception>
    public async Task WaitForSilosAsync(int count, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var management = Client.GetGrain<IManagementGrain>(0);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var active = (await management.GetHosts(onlyActive: true)).Count;
            if (active >= count) break;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"Only {active} of {count} silos of the cluster at {Address} were active after {timeout.TotalSeconds:0} s.");
            await Task.Delay(250);
        }
        while (true)
        {
            var probe = Guid.NewGuid().ToString("N");
            var silos = await Task.WhenAll(Enumerable.Range(0, count).Select(k =>
                Client.GetGrain<Chains.IPlacementProbeGrain>(ChainSpec.ChainKey(probe, k)).Silo()));
            var distinct = silos.Distinct().Count();
            if (distinct >= count) return;
            if (clock.Elapsed > timeout)
                throw new TimeoutException(
                    $"{count} silos of the cluster at {Address} are active, but after {timeout.TotalSeconds:0} s new members still landed on {distinct}.");
            await Task.Delay(250);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try { await _host.StopAsync(TimeSpan.FromSeconds(5)); }
        finally { _host.Dispose(); }
    }
}
