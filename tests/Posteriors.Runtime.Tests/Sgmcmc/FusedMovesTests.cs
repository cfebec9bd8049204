using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

/// <summary>
/// The fused one-pass rules (contiguous CPU leaves at T &gt; 0) against the same rules written as TorchSharp operations,
/// which the samplers use for strided leaves: a leaf stored transposed goes the second way, with the same draws.
/// </summary>
public class FusedMovesTests
{
    [Test]
    public void TheFusedRuleEqualsTheTensorOperations([Values("Sgld", "Sghmc", "Baoa")] string name,
        [Values(ScalarType.Float32, ScalarType.Float64)] ScalarType dtype, [Values] NoiseStream noiseStream)
    {
        // w spans two noise blocks of 4,096 positions and b starts inside the second.
        var target = linspace(-1, 1, 120 * 37, dtype: dtype).reshape(120, 37);
        LogPosterior<object?> logPosterior = (p, _) => (p["w"] - target).square().sum() * -0.5 + p["b"].square().sum() * -0.1;
        var w = randn(new long[] { 120, 37 }, dtype: dtype, generator: new Generator(3));
        var b = randn(new long[] { 5 }, dtype: dtype, generator: new Generator(4));
        var sampler = SamplerCases.Build(name, logPosterior, temperature: 0.5, momenta: 0.25, noiseStream: noiseStream);
        var fused = sampler.Init(ParameterTree.From(("w", w), ("b", b)), seed: 9);
        var strided = sampler.Init(ParameterTree.From(("w", w.t().contiguous().t()), ("b", b)), seed: 9);
        Assert.That(fused.Params["w"].is_contiguous() && !strided.Params["w"].is_contiguous(), Is.True);
        for (var step = 0; step < 5; step++)
        {
            sampler.Update(fused, inplace: true);
            sampler.Update(strided, inplace: true);
        }
        var tolerance = dtype == ScalarType.Float32 ? 1e-5 : 1e-12;
        foreach (var (a, c) in sampler.Tensors(fused).Zip(sampler.Tensors(strided)))
            Assert.That(a.allclose(c, rtol: tolerance, atol: tolerance), Is.True, $"{a.Str()} vs {c.Str()}");
        Assert.That(fused.Params["w"].sub(w).abs().max().to_type(ScalarType.Float64).item<double>(), Is.GreaterThan(0.01), "the chains moved");
    }
}
