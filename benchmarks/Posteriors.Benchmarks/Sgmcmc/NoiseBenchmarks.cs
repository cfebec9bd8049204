using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Benchmarks.Sgmcmc;

/// <summary>
/// 669,706 standard normals (one per parameter of the MLP 784-512-512-10), float32, CPU, one thread: torch's generator
/// (the baseline, what the samplers used before) against the samplers' counter-based generators writing into the same
/// tensor: the default <see cref="NoiseStream.PhiloxXoshiro"/> and the first releases' <see cref="NoiseStream.PhiloxBoxMuller"/>.
/// Goal: ≤ 0.4 ms.
/// </summary>
[MemoryDiagnoser]
public class NoiseBenchmarks
{
    private const int Count = 669_706;
    private readonly Rng _rng = new();
    private Tensor _buffer = null!;
    private Generator _generator = null!;
    private long _step;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(1);
        _buffer = empty(Count);
        _generator = new Generator(1);
    }

    [Benchmark]
    public void PhiloxXoshiro() => _rng.NormalInto(_buffer, 1, _step++, 0, 0, NoiseStream.PhiloxXoshiro);

    [Benchmark]
    public void PhiloxBoxMuller() => _rng.NormalInto(_buffer, 1, _step++, 0, 0, NoiseStream.PhiloxBoxMuller);

    [Benchmark(Baseline = true)]
    public void TorchNormal() => _buffer.normal_(0, 1, _generator);
}
