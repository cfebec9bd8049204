using BenchmarkDotNet.Attributes;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Trees;

/// <summary>
/// A tree map over a 1M-parameter tree (an MLP-like set of leaves) against the same raw tensor loop.
/// Goal: ratio (Tree ÷ Raw) ≤ 1.05.
/// </summary>
[MemoryDiagnoser]
public class TreeMapBenchmarks
{
    private ParameterTree _tree = null!;
    private Tensor[] _raw = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        _tree = ParameterTree.From(
            ("fc1.weight", randn(1000, 784)), ("fc1.bias", randn(1000)),
            ("fc2.weight", randn(200, 1000)), ("fc2.bias", randn(200)),
            ("fc3.weight", randn(10, 200)), ("fc3.bias", randn(10)));
        _raw = _tree.Leaves.ToArray();
    }

    [Benchmark]
    public void TreeMap()
    {
        using var scope = NewDisposeScope();
        _tree.Map(t => t * 0.5 + 1.0);
    }

    // Declared last: on a shared machine the first benchmark measured was consistently penalised.
    [Benchmark(Baseline = true)]
    public void RawLoop()
    {
        using var scope = NewDisposeScope();
        var result = new Tensor[_raw.Length];
        for (var i = 0; i < _raw.Length; i++) result[i] = _raw[i] * 0.5 + 1.0;
    }
}
