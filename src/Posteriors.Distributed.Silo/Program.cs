using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Dashboard;
using Posteriors.Distributed.Hosting;
using StackExchange.Redis;

namespace Posteriors.Distributed.Silo;

/// <summary>
/// A Posteriors silo: hosts chain and shard grains, with membership and checkpoints in Redis.
/// <code>posteriors-silo --redis 127.0.0.1:6379 --address 127.0.0.1 --silo-port 11111 --gateway-port 30000 [--dashboard 8080]</code>
/// </summary>
public static class Program
{
    private const string Usage =
        "usage: posteriors-silo --redis HOST:PORT [--address IP] [--silo-port N] [--gateway-port N] [--cluster-id ID] " +
        "[--service-id ID] [--torch-threads N] [--lanes N] [--dashboard PORT] [--probe-timeout SECONDS] [--death-votes N]";

    /// <summary>Runs the silo until it is stopped (SIGTERM, Ctrl+C).</summary>
    public static async Task<int> Main(string[] args)
    {
        SiloOptions options;
        try { options = SiloOptions.Parse(args); }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"{e.Message}\n{Usage}");
            return 2;
        }

        // As the main job does: a step's megabyte buffers stay on the heap instead of costing page faults every step.
        Posteriors.Native.NativeAllocator.KeepBuffersOnHeap();
        TorchSharp.torch.set_num_threads(options.TorchThreads);
        // Grains never fork TorchScript work; no inter-op pool to compete with the lanes.
        TorchSharp.torch.set_num_interop_threads(1);
        try
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(PosteriorsSilo.RedisOptions(options.Redis));
            await ClusterProtocol.EnsureCompatibleAsync(redis.GetDatabase(), options.ServiceId, options.Redis, register: true);
        }
        catch (Exception e) when (e is RedisConnectionException or IncompatibleClusterException)
        {
            await Console.Error.WriteLineAsync(e is IncompatibleClusterException ? e.Message : $"Redis at {options.Redis} did not answer: {e.Message}");
            return 3;
        }

        if (options.Dashboard is { } port)
        {
            var web = WebApplication.CreateBuilder();
            Configure(web.Services, web.Logging, web.Host, options);
            var app = web.Build();
            app.Urls.Add($"http://{options.Address}:{port}");
            app.MapOrleansDashboard();
            await app.RunAsync();
        }
        else
        {
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.UseOrleans(silo => ConfigureSilo(silo, options));
            await builder.Build().RunAsync();
        }
        return 0;
    }

    private static void Configure(Microsoft.Extensions.DependencyInjection.IServiceCollection _, ILoggingBuilder logging, IHostBuilder host, SiloOptions options)
    {
        logging.SetMinimumLevel(LogLevel.Warning);
        host.UseOrleans(silo =>
        {
            ConfigureSilo(silo, options);
            silo.AddDashboard();
        });
    }

    private static void ConfigureSilo(ISiloBuilder silo, SiloOptions options)
    {
        silo.UseRedisClustering(o => o.ConfigurationOptions = PosteriorsSilo.RedisOptions(options.Redis));
        silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (options.ClusterId, options.ServiceId));
        silo.ConfigureEndpoints(IPAddress.Parse(options.Address), options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: false);
        silo.UseRedisCheckpoints(options.Redis);
        silo.AddPosteriors(lanes: options.Lanes);
        // Faster failure detection than Orleans's defaults (tests, small clusters): a silo missing three probes of
        // this many seconds, voted dead by this many others, is declared dead and its grains move.
        if (options.ProbeTimeout is not null || options.DeathVotes is not null)
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                if (options.ProbeTimeout is { } seconds) o.ProbeTimeout = TimeSpan.FromSeconds(seconds);
                if (options.DeathVotes is { } votes) o.NumVotesForDeathDeclaration = votes;
            });
    }
}

/// <summary>The silo's command line.</summary>
internal sealed record SiloOptions(string Redis, string Address, int SiloPort, int GatewayPort, string ClusterId, string ServiceId,
    int TorchThreads, int Lanes, int? Dashboard, int? ProbeTimeout, int? DeathVotes)
{
    public static SiloOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"Unexpected argument '{args[i]}' (every option takes a value).");
            values[args[i]] = args[++i];
        }
        var known = new[] { "--redis", "--address", "--silo-port", "--gateway-port", "--cluster-id", "--service-id", "--torch-threads", "--lanes", "--dashboard", "--probe-timeout",
            "--death-votes" };
        foreach (var key in values.Keys.Where(k => !known.Contains(k))) throw new ArgumentException($"Unknown option '{key}'.");
        int Int(string key, int fallback, int min, int max)
        {
            if (!values.TryGetValue(key, out var v)) return fallback;
            return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) && x >= min && x <= max
                ? x : throw new ArgumentException($"{key} must be an integer in [{min}, {max}]; got '{v}'.");
        }
        var address = values.GetValueOrDefault("--address", "127.0.0.1");
        if (!IPAddress.TryParse(address, out _)) throw new ArgumentException($"--address must be an IP address; got '{address}'.");
        return new SiloOptions(
            values.TryGetValue("--redis", out var redis) ? redis : throw new ArgumentException("--redis HOST:PORT is required (membership and checkpoints)."),
            address, Int("--silo-port", 11111, 1, 65535), Int("--gateway-port", 30000, 1, 65535),
            values.GetValueOrDefault("--cluster-id", ClusterConnection.DefaultId), values.GetValueOrDefault("--service-id", ClusterConnection.DefaultId),
            Int("--torch-threads", 1, 1, 1024), Int("--lanes", 1, 1, 1024), values.ContainsKey("--dashboard") ? Int("--dashboard", 8080, 1, 65535) : null,
            values.ContainsKey("--probe-timeout") ? Int("--probe-timeout", 10, 1, 600) : null,
            values.ContainsKey("--death-votes") ? Int("--death-votes", 2, 1, 100) : null);
    }
}
