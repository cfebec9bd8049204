using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Storage;
using Orleans.Hosting;
using Orleans.TestingHost;
using Posteriors.Distributed.Hosting;

namespace Posteriors.Distributed.Tests;

/// <summary>An in-process cluster of three silos sharing one checkpoint folder, for the tests of one fixture.</summary>
public sealed class TestClusterFixture : IAsyncDisposable
{
    private TestClusterFixture(InProcessTestCluster cluster, string folder) => (Cluster, Folder) = (cluster, folder);

    /// <summary>The cluster.</summary>
    public InProcessTestCluster Cluster { get; }

    /// <summary>The checkpoint folder.</summary>
    public string Folder { get; }

    /// <summary>Starts <paramref name="silos"/> silos.</summary>
    public static async Task<TestClusterFixture> StartAsync(short silos = 3)
    {
        var folder = Path.Combine(Path.GetTempPath(), "posteriors-cluster-" + Guid.NewGuid().ToString("N"));
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddPosteriors();
            silo.Services.AddGrainStorage(ChainGrain.StorageName,
                (sp, _) => new SwitchableStorage(new DirectoryGrainStorage(folder, sp.GetRequiredService<Serializer>())));
            // A killed silo is declared dead within seconds, so its members reactivate elsewhere quickly; three missed
            // 2-s probes keep a live silo on a loaded 2-core CI machine from being voted out.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(2);
                o.NumMissedProbesLimit = 3;
                o.NumVotesForDeathDeclaration = 1;
            });
        });
        builder.ConfigureClient(client => client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(15)));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new TestClusterFixture(cluster, folder);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>Checkpoint storage that refuses every checkpoint from step <see cref="FailFrom"/> on, as an unreachable store would.</summary>
public sealed class SwitchableStorage(IGrainStorage inner) : IGrainStorage
{
    /// <summary>Checkpoints of this step or later fail (long.MaxValue: none).</summary>
    public static long FailFrom { get; set; } = long.MaxValue;

    /// <inheritdoc />
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

    /// <inheritdoc />
    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        grainState.State is ChainCheckpoint c && c.Step >= FailFrom
            ? throw new IOException("checkpoint store unavailable")
            : inner.WriteStateAsync(stateName, grainId, grainState);

    /// <inheritdoc />
    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
}
