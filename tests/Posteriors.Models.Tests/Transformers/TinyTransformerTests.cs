using Posteriors.Models.Transformers;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models.Tests.Transformers;

public class TinyTransformerTests
{
    private static readonly TinyTransformerConfig Small = new(VocabularySize: 11, ContextLength: 12, Width: 16, Heads: 2, Layers: 2, LoraRank: 8, LoraAlpha: 32);

    private static TinyTransformer Build(int seed = 1)
    {
        manual_seed(seed);
        return new TinyTransformer(Small).UseLoraOnly();
    }

    [Test]
    public void OnlyTheLoraAdaptersOfTheAttentionProjectionsAreTrainable()
    {
        var model = Build();
        var lora = model.TrainableParameters();
        // 2 layers × 4 projections (q, k, v, o) × (A, B).
        Assert.That(lora.Count, Is.EqualTo(Small.Layers * 4 * 2));
        Assert.That(lora.Names.All(TinyTransformer.IsLoraParameter), Is.True, string.Join(", ", lora.Names));
        Assert.That(lora.Names, Does.Contain("blocks.0.attn.q.lora_A").And.Contain("blocks.1.attn.o.lora_B"));
        Assert.That(lora["blocks.0.attn.q.lora_A"].shape, Is.EqualTo(new long[] { 8, 16 }));
        Assert.That(lora["blocks.0.attn.q.lora_B"].shape, Is.EqualTo(new long[] { 16, 8 }));
        var frozen = ParameterTree.FromModule(model).Where((n, _) => !TinyTransformer.IsLoraParameter(n));
        Assert.That(frozen.Count, Is.GreaterThan(10));
        Assert.That(frozen.Where((_, t) => t.requires_grad).Names, Is.Empty, "trainable leaves of the frozen part");
    }

    [Test]
    public void AFreshAdapterLeavesTheBaseOutputUnchangedAndScalesByAlphaOverRank()
    {
        manual_seed(2);
        var layer = new LoraLinear(6, 5, rank: 2, alpha: 8);
        var x = randn(3, 6);
        var baseOut = layer.Base.call(x);
        TensorAssert.Close(layer.call(x), baseOut);
        var p = ParameterTree.FromModule(layer);
        using (no_grad()) p["lora_B"].copy_(randn(5, 2));
        var expected = baseOut + x.matmul(p["lora_A"].t()).matmul(p["lora_B"].t()) * (8.0 / 2);
        TensorAssert.Close(layer.call(x), expected, rtol: 1e-5, atol: 1e-6);
    }

    [Test]
    public void LogPosteriorThroughModuleBindingHasGradientOnlyOnLora()
    {
        var model = Build();
        var lora = model.TrainableParameters().Map(t => t.detach().clone() + 0.05 * randn_like(t));
        var baseBefore = ParameterTree.FromModule(model).Where((n, _) => !TinyTransformer.IsLoraParameter(n)).Clone();
        var batch = randint(0, Small.VocabularySize, new long[] { 4, 9 }, dtype: ScalarType.Int64);
        var logPosterior = CharLanguageModel.LogPosterior(model, datasetSize: 1000, logPrior: p => DiagNormal.LogProb(p, 0, 1));

        var (value, aux, grad) = Autodiff.ValueAndGrad(logPosterior, lora, batch);
        Assert.That(double.IsFinite(value.item<float>()), Is.True, $"value {value.item<float>()}");
        // Independently: bind by copying, then mean next-token log-likelihood via cross-entropy, plus the prior over N.
        var copy = new TinyTransformer(Small);
        copy.load_state_dict(model.state_dict());
        using (no_grad()) foreach (var (name, t) in lora) copy.get_parameter(name)!.copy_(t);
        var logits = copy.call(batch[.., ..8]);
        var expected = -nn.functional.cross_entropy(logits.reshape(-1, Small.VocabularySize), batch[.., 1..].reshape(-1)).item<float>()
                       + DiagNormal.LogProb(lora, 0, 1).item<float>() / 1000;
        Assert.That(value.item<float>(), Is.EqualTo(expected).Within(1e-5));
        Assert.That(aux!.shape, Is.EqualTo(new long[] { 4 }));
        Assert.That(grad.Names, Is.EqualTo(lora.Names));
        Assert.That(grad.Leaves.All(g => g.abs().sum().item<float>() > 0), Is.True, "every LoRA leaf (B random, A then non-zero) gets a gradient");
        foreach (var (name, p) in ParameterTree.FromModule(model).Where((n, _) => !TinyTransformer.IsLoraParameter(n)))
        {
            Assert.That(p.grad is null || p.grad.abs().sum().item<float>() == 0, Is.True, $"{name} must not receive a gradient");
            Assert.That(equal(p, baseBefore[name]).all().item<bool>(), Is.True, $"{name} must stay frozen");
        }

        // The gradient is that of the function of the LoRA values: check one coordinate by central differences in float64.
        model.to(ScalarType.Float64);
        var lora64 = lora.To(ScalarType.Float64);
        var grad64 = Autodiff.ValueAndGrad(logPosterior, lora64, batch).Gradient;
        const double h = 1e-6;
        var plus = lora64.Clone(); plus["blocks.1.attn.v.lora_A"][0, 3].add_(h);
        var minus = lora64.Clone(); minus["blocks.1.attn.v.lora_A"][0, 3].sub_(h);
        var fd = (Autodiff.ValueAndGrad(logPosterior, plus, batch).Value.item<double>() -
                  Autodiff.ValueAndGrad(logPosterior, minus, batch).Value.item<double>()) / (2 * h);
        Assert.That(grad64["blocks.1.attn.v.lora_A"][0, 3].item<double>(), Is.EqualTo(fd).Within(1e-6 + 1e-4 * Math.Abs(fd)));
    }

    [Test]
    public void ALaterTokenDoesNotChangeEarlierLogits()
    {
        var model = Build();
        using (no_grad()) foreach (var b in model.TrainableParameters().Where((n, _) => n.EndsWith("lora_B")).Leaves) b.copy_(randn_like(b));
        var tokens = randint(0, Small.VocabularySize, new long[] { 2, 10 }, dtype: ScalarType.Int64);
        var changed = tokens.clone();
        const int position = 6;
        changed[.., position] = (tokens[.., position] + 1) % Small.VocabularySize;
        using var _ = no_grad();
        var a = model.call(tokens);
        var b2 = model.call(changed);
        Assert.That(equal(a[.., ..position], b2[.., ..position]).all().item<bool>(), Is.True, "positions before the change must be bit-identical");
        Assert.That((a[.., position..] - b2[.., position..]).abs().max().item<float>(), Is.GreaterThan(1e-4f), "the changed position and later ones must differ");
    }

    [Test]
    public void InvalidSizesAreReportedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TinyTransformer(Small with { Heads = 3 }));
        Assert.That(e!.ParamName, Is.EqualTo("Heads"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraLinear(4, 4, rank: 0, alpha: 1));
        Assert.That(e!.ParamName, Is.EqualTo("rank"));
        var model = Build();
        var tooLong = zeros(new long[] { 1, Small.ContextLength + 1 }, dtype: ScalarType.Int64);
        Assert.That(() => model.call(tooLong), Throws.ArgumentException.With.Message.Contains("context length"));
    }
}
