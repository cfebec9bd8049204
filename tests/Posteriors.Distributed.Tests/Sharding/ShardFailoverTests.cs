using Posteriors.Curvature;
using Posteriors.Distributed.Models;
using Posteriors.Distributed.Sharding;
using Posteriors.Laplace;

namespace Posteriors.Distributed.Tests.Sharding;

[NonParallelizable]
public sealed class ShardFailoverTests
{
    [Test, CancelAfter(120_000)]
    public async Task Sharded_laplace_after_a_killed_silo_still_equals_local()
    {
        await using var fixture = await TestClusterFixture.StartAsync(silos: 3);
        var spec = ModelSpec.Of(SyntheticClassifier.Name, ("train", 150), ("test", 30), ("hidden", 4), ("batch", 50));
        using var model = new ModelCatalog().Build(spec);
        var mode = model.InitialParameters(1, 0);
        var sharded = new ShardedData(fixture.Cluster.Client, "failover", spec, shards: 3);
        var before = await sharded.DiagPrecisionAsync(mode, CurvatureKind.DiagFisher, model.PriorPrecision, chunk: 50);

        // Shard k lives on silo k mod 3: one of them goes with the killed silo and is rebuilt on a survivor.
        await fixture.Cluster.KillSiloAsync(fixture.Cluster.Silos[^1]);
        var after = await sharded.DiagPrecisionAsync(mode, CurvatureKind.DiagFisher, model.PriorPrecision, chunk: 50);

        var local = DiagFisher.Build(model.ForwardModel!.PerDatumLogDensity(), model.PriorPrecision, module: model.Module);
        var expected = local.Update(local.Init(mode), (model.TrainX, model.TrainY)).Precision;
        for (var i = 0; i < expected.Count; i++)
        {
            var scale = Math.Max(1.0, expected.Leaves[i].abs().max().item<float>());
            Assert.That((after.Leaves[i] - expected.Leaves[i]).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-5 * scale), expected.Names[i]);
            Assert.That(after.Leaves[i].equal(before.Leaves[i]).all().item<bool>(), Is.True, $"{expected.Names[i]}: the same sum before and after");
        }
    }
}
