using BenchmarkDotNet.Attributes;
using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Sgmcmc;

/// <summary>
/// K = 8 SGHMC chains on the MLP 784-512-512-10 (batch 128, one thread): eight sequential single-chain steps (the
/// baseline) against one step of the stacked representation (leading chain dimension): SGHMC on the stacked tree with the
/// log posterior written as batched matrix products (one evaluation for all chains), or the ensemble with the
/// single-chain log posterior (it steps the chains one after another on views of the stacked state).
/// Goal: stacked time ≤ sequential time (throughput ratio ≥ 1.0, i.e. Ratio column ≤ 1.0).
/// </summary>
/// <remarks>The baseline is declared last: BenchmarkDotNet runs methods in declaration order, and on a shared machine the
/// first one measured was consistently penalised.</remarks>
[MemoryDiagnoser]
public class ParallelChainsBenchmarks
{
    private const int K = 8;
    private Tensor _x = null!, _y = null!;
    private Sghmc<(Tensor X, Tensor Y)> _single = null!;
    private Sghmc<(Tensor X, Tensor Y)> _batched = null!;
    private Ensemble<(Tensor X, Tensor Y)> _perMember = null!;
    private SghmcState[] _chains = null!;
    private SghmcState _batchedState = null!, _perMemberState = null!;

    private static Tensor StackedLogits(ParameterTree p, Tensor x)
    {
        // x [B, 784] against weights [K, out, in]: one batched matmul per layer gives [K, B, out].
        static Tensor Linear(Tensor h, Tensor w, Tensor b) => h.matmul(w.transpose(1, 2)) + b.unsqueeze(1);
        var h = nn.functional.relu(Linear(x.unsqueeze(0), p["fc1.weight"], p["fc1.bias"]));
        h = nn.functional.relu(Linear(h, p["fc2.weight"], p["fc2.bias"]));
        return Linear(h, p["fc3.weight"], p["fc3.bias"]);
    }

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(0);
        _x = randn(MlpStepBenchmarks.Batch, 784);
        _y = randint(0, 10, new long[] { MlpStepBenchmarks.Batch });
        LogPosterior<(Tensor X, Tensor Y)> single = (p, b) => -nn.functional.cross_entropy(MlpStepBenchmarks.Logits(p, b.X), b.Y);
        // Σₖ of each chain's mean cross-entropy = K × the mean over [K·B] rows.
        LogPosterior<(Tensor X, Tensor Y)> batched = (p, b) =>
            -nn.functional.cross_entropy(StackedLogits(p, b.X).reshape(-1, 10), b.Y.repeat(K)) * K;
        _single = Sghmc.Build(single, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000);
        // SGHMC is elementwise: over the stacked tree it moves all K chains with one update (no ensemble needed).
        _batched = Sghmc.Build(batched, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000, momenta: InitialMomenta.Zero);
        _perMember = Ensemble.Build(single, 0.1, alpha: 10, sigma: Math.Sqrt(10), temperature: 1.0 / 60_000);
        var members = Enumerable.Range(0, K).Select(_ => ParameterTree.FromModule(MlpStepBenchmarks.Mlp()).Map(t => t.detach().clone())).ToArray();
        _chains = members.Select((m, k) => _single.Init(m, seed: k)).ToArray();
        var stacked = ParallelChains.Stack(members);
        _batchedState = _batched.Init(stacked, seed: 100);
        _perMemberState = _perMember.Init(stacked, seed: 200);
    }

    [Benchmark]
    public void EightStackedChainsBatchedMatmul()
    {
        using var scope = NewDisposeScope();
        _batched.Update(_batchedState, (_x, _y), inplace: true);
    }

    [Benchmark]
    public void EightStackedChainsPerMember()
    {
        using var scope = NewDisposeScope();
        _perMember.Update(_perMemberState, (_x, _y), inplace: true);
    }

    [Benchmark(Baseline = true)]
    public void EightSequentialChains()
    {
        foreach (var chain in _chains)
        {
            using var scope = NewDisposeScope();
            _single.Update(chain, (_x, _y), inplace: true);
        }
    }
}
