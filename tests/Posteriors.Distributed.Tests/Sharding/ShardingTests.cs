using Posteriors.Curvature;
using Posteriors.Distributed.Models;
using Posteriors.Distributed.Sharding;
using Posteriors.Laplace;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using Posteriors.Vi;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Tests.Sharding;

[NonParallelizable]
public sealed class ShardingTests
{
    private TestClusterFixture _fixture = null!;
    private DistributedModel _model = null!;

    private static readonly ModelSpec Spec = ModelSpec.Of(SyntheticClassifier.Name, ("train", 300), ("test", 90), ("hidden", 8), ("batch", 50));

    [OneTimeSetUp]
    public async Task StartCluster()
    {
        _fixture = await TestClusterFixture.StartAsync(silos: 3);
        _model = new ModelCatalog().Build(Spec);
    }

    [OneTimeTearDown]
    public async Task StopCluster()
    {
        _model.Dispose();
        await _fixture.DisposeAsync();
    }

    private ShardedData Sharded(string name, int shards = 3) => new(_fixture.Cluster.Client, name, Spec, shards);

    private static void AssertClose(Tensor actual, Tensor expected, string what, double tolerance = 1e-5)
    {
        var scale = Math.Max(1.0, expected.abs().max().item<float>());
        var error = (actual - expected).abs().max().item<float>();
        Assert.That(error, Is.LessThanOrEqualTo(tolerance * scale), $"{what}: max |sharded − local| = {error} (scale {scale})");
    }

    private static void AssertClose(ParameterTree actual, ParameterTree expected, string what)
    {
        for (var i = 0; i < expected.Count; i++) AssertClose(actual.Leaves[i], expected.Leaves[i], $"{what} {expected.Names[i]}");
    }

    private (Tensor X, Tensor Y) LocalBatch(long[] idx)
    {
        var i = tensor(idx);
        return (_model.TrainX.index_select(0, i), _model.TrainY.index_select(0, i));
    }

    private long[] BatchOf(long step) => _model.BatchIndices(seed: 5, step).data<long>().ToArray();

    [Test]
    public void The_summed_shard_gradient_equals_the_local_gradient()
    {
        var idx = BatchOf(4);
        var θ = _model.InitialParameters(5, 7);
        var expected = Autodiff.ValueAndGrad(_model.LogPosterior, θ, LocalBatch(idx));
        var actual = Autodiff.ValueAndGrad(Sharded("gradient", shards: 3).LogPosterior, θ, idx);
        AssertClose(actual.Value, expected.Value, "log π");
        // Relative to the gradient's own scale, which is far below 1.
        var scale = expected.Gradient.Leaves.Max(g => g.abs().max().item<float>());
        for (var i = 0; i < θ.Count; i++)
            AssertClose(actual.Gradient.Leaves[i] / scale, expected.Gradient.Leaves[i] / scale, $"∇ {θ.Names[i]}");
    }

    [Test]
    public void A_data_parallel_sghmc_step_equals_the_local_step()
    {
        var sharded = Sharded("sghmc");
        var idx = BatchOf(0);
        var local = Sghmc.Build<(Tensor X, Tensor Y)>(_model.LogPosterior, lr: 0.05, alpha: 0.5, temperature: 1.0 / 300, momenta: 0.1);
        var remote = Sghmc.Build(sharded.LogPosterior, lr: 0.05, alpha: 0.5, temperature: 1.0 / 300, momenta: 0.1);
        var θ = _model.InitialParameters(5, 0);
        var expected = local.Update(local.Update(local.Init(θ, seed: 9), LocalBatch(idx)), LocalBatch(BatchOf(1)));
        var actual = remote.Update(remote.Update(remote.Init(θ, seed: 9), idx), BatchOf(1));
        AssertClose(actual.Params, expected.Params, "θ");
        AssertClose(actual.Momenta, expected.Momenta, "m");
        AssertClose(actual.LogPosterior, expected.LogPosterior, "log π");
        Assert.That(actual.Params.Leaves[0].equal(θ.Leaves[0]).all().item<bool>(), Is.False, "the step moved θ");
    }

    [Test]
    public void A_data_parallel_sgld_step_equals_the_local_step()
    {
        var sharded = Sharded("sgld", shards: 2);
        var idx = BatchOf(2);
        var local = Sgld.Build<(Tensor X, Tensor Y)>(_model.LogPosterior, lr: 1e-3, temperature: 1.0 / 300);
        var remote = Sgld.Build(sharded.LogPosterior, lr: 1e-3, temperature: 1.0 / 300);
        var θ = _model.InitialParameters(5, 1);
        AssertClose(remote.Update(remote.Init(θ, seed: 4), idx).Params, local.Update(local.Init(θ, seed: 4), LocalBatch(idx)).Params, "θ");
    }

    [Test]
    public void A_data_parallel_vi_step_equals_the_local_step()
    {
        var sharded = Sharded("vi");
        var idx = BatchOf(3);
        var local = DiagVi.Build<(Tensor X, Tensor Y)>(_model.LogPosterior, Posteriors.Optim.Optimizer.Sgd(lr: 0.05), temperature: 1.0 / 300, initLogSd: -3);
        var remote = DiagVi.Build(sharded.LogPosterior, Posteriors.Optim.Optimizer.Sgd(lr: 0.05), temperature: 1.0 / 300, initLogSd: -3);
        var θ = _model.InitialParameters(5, 2);
        var expected = local.Update(local.Init(θ, seed: 2), LocalBatch(idx));
        var actual = remote.Update(remote.Init(θ, seed: 2), idx);
        AssertClose(actual.Params, expected.Params, "μ");
        AssertClose(actual.Nelbo, expected.Nelbo, "NELBO");
    }

    [TestCase(CurvatureKind.DiagFisher)]
    [TestCase(CurvatureKind.DiagGgn)]
    public async Task Sharded_diagonal_laplace_equals_local(CurvatureKind kind)
    {
        var mode = _model.InitialParameters(5, 3);
        var forward = _model.ForwardModel!;
        ITransform<DiagLaplaceState, (Tensor X, Tensor Y)> t = kind == CurvatureKind.DiagFisher
            ? DiagFisher.Build(forward.PerDatumLogDensity(), _model.PriorPrecision, module: _model.Module)
            : DiagGgn.Build(forward, _model.PriorPrecision, module: _model.Module);
        var expected = t.Update(t.Init(mode), (_model.TrainX, _model.TrainY));
        var actual = await Sharded($"laplace-{kind}").DiagPrecisionAsync(mode, kind, _model.PriorPrecision, chunk: 64);
        AssertClose(actual, expected.Precision, kind.ToString());
    }

    [TestCase(CurvatureKind.DenseFisher)]
    [TestCase(CurvatureKind.DenseGgn)]
    public async Task Sharded_dense_laplace_equals_local(CurvatureKind kind)
    {
        // Dense over the whole tree: a small MLP (784·2 + 2 + 2·10 + 10 parameters).
        var spec = ModelSpec.Of(SyntheticClassifier.Name, ("train", 120), ("test", 30), ("hidden", 2), ("batch", 20));
        using var model = new ModelCatalog().Build(spec);
        var mode = model.InitialParameters(5, 4);
        var forward = model.ForwardModel!;
        ITransform<DenseLaplaceState, (Tensor X, Tensor Y)> t = kind == CurvatureKind.DenseFisher
            ? DenseFisher.Build(forward.PerDatumLogDensity(), model.PriorPrecision, module: model.Module)
            : DenseGgn.Build(forward, model.PriorPrecision, module: model.Module);
        var expected = t.Update(t.Init(mode), (model.TrainX, model.TrainY));
        var actual = await new ShardedData(_fixture.Cluster.Client, $"dense-{kind}", spec, 3).DensePrecisionAsync(mode, kind, model.PriorPrecision, chunk: 32);
        AssertClose(actual, expected.Precision, kind.ToString());
    }

    [Test]
    public async Task Predictions_over_the_sharded_test_set_equal_local()
    {
        var members = new[] { _model.InitialParameters(5, 5), _model.InitialParameters(5, 6) };
        var actual = await Sharded("predict", shards: 4).TestLogProbsAsync(members);
        var expected = stack(members.Select(m => _model.LogProbabilities(m, _model.TestX!)).ToArray());
        Assert.That(actual.shape, Is.EqualTo(expected.shape));
        AssertClose(actual, expected, "log p");
        var labels = _model.TestY!;
        Assert.That(Metrics.PredictiveMetrics.Accuracy(Metrics.PredictiveMetrics.Mixture(actual), labels),
            Is.EqualTo(Metrics.PredictiveMetrics.Accuracy(Metrics.PredictiveMetrics.Mixture(expected), labels)).Within(1e-12));
    }
}
