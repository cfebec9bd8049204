using Orleans.Configuration;
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
            silo.AddPosteriors().UseDirectoryCheckpoints(folder);
            // A killed silo is declared dead within a few seconds, so its members reactivate elsewhere quickly.
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
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
