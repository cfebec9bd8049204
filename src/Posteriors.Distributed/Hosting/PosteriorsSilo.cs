using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Models;
using Posteriors.Distributed.Storage;
using StackExchange.Redis;

namespace Posteriors.Distributed.Hosting;

/// <summary>Silo set-up: the model catalog and the checkpoint storage.</summary>
public static class PosteriorsSilo
{
    /// <summary>
    /// Registers the grains' model catalog (the built-in models plus those <paramref name="configure"/> adds), their
    /// placement and the silo's <see cref="ComputeLanes"/>. Every silo of a cluster must register the same models.
    /// </summary>
    /// <param name="builder">The silo.</param>
    /// <param name="configure">Adds models to the catalog.</param>
    /// <param name="lanes">How many grains' tensor work runs at once on this silo (each with the process's torch threads).</param>
    public static ISiloBuilder AddPosteriors(this ISiloBuilder builder, Action<ModelCatalog>? configure = null, int lanes = 1)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var catalog = new ModelCatalog();
        configure?.Invoke(catalog);
        builder.Services.AddSingleton(catalog);
        builder.Services.AddSingleton(new ComputeLanes(lanes));
        builder.Services.AddPlacementDirector<MemberPlacement, MemberPlacementDirector>();
        return builder;
    }

    /// <summary>Checkpoints in a folder every silo can reach (see <see cref="DirectoryGrainStorage"/>).</summary>
    public static ISiloBuilder UseDirectoryCheckpoints(this ISiloBuilder builder, string folder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddGrainStorage(ChainGrain.StorageName, (sp, _) => new DirectoryGrainStorage(folder, sp.GetRequiredService<Serializer>()));
        return builder;
    }

    /// <summary>Checkpoints in Redis at <paramref name="redis"/> (<c>host:port</c>).</summary>
    public static ISiloBuilder UseRedisCheckpoints(this ISiloBuilder builder, string redis)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddRedisGrainStorage(ChainGrain.StorageName, options => options.ConfigurationOptions = RedisOptions(redis));
        return builder;
    }

    /// <summary>Redis connection options that fail fast (a few seconds) instead of retrying for a minute.</summary>
    public static ConfigurationOptions RedisOptions(string redis)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(redis);
        var options = ConfigurationOptions.Parse(redis);
        options.ConnectTimeout = 5000;
        options.SyncTimeout = 5000;
        options.AsyncTimeout = 5000;
        options.AbortOnConnectFail = true;
        return options;
    }
}
