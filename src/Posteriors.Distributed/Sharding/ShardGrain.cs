using Posteriors.Curvature;
using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Hosting;
using Posteriors.Distributed.Models;
using Posteriors.Laplace;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Sharding;

/// <summary>See <see cref="IShardGrain"/>.</summary>
[MemberPlacement]
public sealed class ShardGrain(ModelCatalog catalog, ComputeLanes lanes) : Grain, IShardGrain, IDisposable
{
    private ShardSpec? _spec;
    private DistributedModel? _model;
    private (Tensor X, Tensor Y) _train, _test;
    private ParameterTree? _shape;

    /// <inheritdoc />
    public Task<ShardGradient> Gradient(ShardSpec spec, byte[] parameters, long[] batch)
    {
        Ensure(spec);
        ArgumentNullException.ThrowIfNull(batch);
        return lanes.Run(() =>
        {
            using var scope = NewDisposeScope();
            var (lo, hi) = (spec.Lo(_model!.DataSize), spec.Hi(_model.DataSize));
            var local = batch.Where(i => i >= lo && i < hi).Select(i => i - lo).ToArray();
            if (local.Length == 0) return new ShardGradient(0, 0, Array.Empty<byte>());
            var idx = tensor(local, device: _train.X.device);
            var θ = TreeWire.FromBytes(parameters, _shape!);
            var (value, _, grad) = Autodiff.ValueAndGrad(_model.LogPosterior, θ, (_train.X.index_select(0, idx), _train.Y.index_select(0, idx)));
            return new ShardGradient(local.Length, value.to_type(ScalarType.Float64).item<double>(), TreeWire.ToBytes(grad));
        });
    }

    /// <inheritdoc />
    public Task<byte[]> Curvature(ShardSpec spec, byte[] parameters, CurvatureKind kind, int chunk)
    {
        Ensure(spec);
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunk), chunk, "The chunk size must be positive.");
        var forward = _model!.ForwardModel ?? throw new NotSupportedException($"Model '{spec.Model.Name}' has no forward model for Fisher or GGN curvature.");
        return lanes.Run(() =>
        {
            using var scope = NewDisposeScope();
            var θ = TreeWire.FromBytes(parameters, _shape!);
            var n = _train.X.shape[0];
            IEnumerable<(Tensor X, Tensor Y)> Chunks()
            {
                for (long start = 0; start < n; start += chunk)
                {
                    var m = Math.Min(chunk, n - start);
                    yield return (_train.X.narrow(0, start, m), _train.Y.narrow(0, start, m));
                }
            }
            // Laplace accumulates Σᵢ curvature over batches from a zero initial precision: this shard's contribution.
            TState Sum<TState>(ITransform<TState, (Tensor X, Tensor Y)> t) where TState : IAlgorithmState
            {
                var state = t.Init(θ);
                foreach (var b in Chunks()) state = t.Update(state, b, inplace: true);
                return state;
            }
            var module = _model.Module;
            return kind switch
            {
                CurvatureKind.DiagFisher => TreeWire.ToBytes(Sum(DiagFisher.Build(forward.PerDatumLogDensity(), 0.0, module: module)).Precision),
                CurvatureKind.DiagGgn => TreeWire.ToBytes(Sum(DiagGgn.Build(forward, 0.0, module: module)).Precision),
                CurvatureKind.DenseFisher => TreeWire.ToBytes(Sum(DenseFisher.Build(forward.PerDatumLogDensity(), 0.0, module: module)).Precision),
                CurvatureKind.DenseGgn => TreeWire.ToBytes(Sum(DenseGgn.Build(forward, 0.0, module: module)).Precision),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown curvature."),
            };
        });
    }

    /// <inheritdoc />
    public Task<Prediction[]> TestLogProbs(ShardSpec spec, byte[][] parameters)
    {
        Ensure(spec);
        ArgumentNullException.ThrowIfNull(parameters);
        return lanes.Run(() => parameters.Select(p =>
        {
            using var scope = NewDisposeScope();
            var logProbs = _model!.LogProbabilities(TreeWire.FromBytes(p, _shape!), _test.X);
            return new Prediction((int)logProbs.shape[0], (int)logProbs.shape[1], TreeWire.ToBytes(logProbs));
        }).ToArray());
    }

    /// <summary>Builds the shard on first use (or after its silo died); a different spec for the same grain is refused.</summary>
    private void Ensure(ShardSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validated();
        if (spec.Key != this.GetPrimaryKeyString())
            throw new ArgumentException($"Spec of shard '{spec.Key}' sent to grain '{this.GetPrimaryKeyString()}'.", nameof(spec));
        if (_spec is not null)
        {
            if (_spec.Shards != spec.Shards || !_spec.Model.SameAs(spec.Model))
                throw new InvalidOperationException($"Shard '{spec.Key}' already holds {_spec.Model} in {_spec.Shards} shards; use a new data name.");
            return;
        }
        var model = catalog.Build(spec.Model);
        using (NewDisposeScope())
        {
            _train = Rows(model.TrainX, model.TrainY, spec);
            if (model.TestX is { } tx && model.TestY is { } ty) _test = Rows(tx, ty, spec);
            _shape = model.InitialParameters(0, 0).DetachFromDisposeScope();
        }
        (_model, _spec) = (model, spec);
    }

    /// <summary>This shard's rows, copied (the model's full set can then be freed by a loader that reads only its range).</summary>
    private static (Tensor X, Tensor Y) Rows(Tensor x, Tensor y, ShardSpec spec)
    {
        var (lo, hi) = (spec.Lo(x.shape[0]), spec.Hi(x.shape[0]));
        return (x.narrow(0, lo, hi - lo).clone().DetachFromDisposeScope(), y.narrow(0, lo, hi - lo).clone().DetachFromDisposeScope());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _model?.Dispose();
        _shape?.DisposeLeaves();
        _train.X?.Dispose(); _train.Y?.Dispose(); _test.X?.Dispose(); _test.Y?.Dispose();
    }
}
