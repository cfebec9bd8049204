using System.Text.Json;
using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Tests.Serialization;

/// <summary>Weights written by PyTorch (scripts/weight-fixtures.py; the files are committed, CI runs no Python).</summary>
public class WeightsFileTests
{
    private static readonly string Fixtures = Path.Combine(TestContext.CurrentContext.TestDirectory, "Serialization", "Fixtures", "weights");
    private static string Fixture(string name) => Path.Combine(Fixtures, name);

    /// <summary>The fixture's architecture: conv(1→2, 3×3) on 4×4 images, then linear 8→3.</summary>
    private sealed class Tiny : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d conv;
        private readonly Linear fc;

        public Tiny(long outputs = 3) : base(nameof(Tiny))
        {
            conv = nn.Conv2d(1, 2, 3);
            fc = nn.Linear(8, outputs);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc.call(nn.functional.relu(conv.call(x)).flatten(1));
    }

    private static JsonElement Expected() => JsonDocument.Parse(File.ReadAllText(Fixture("tiny.json"))).RootElement;

    private static Tensor Values(JsonElement e, string name)
    {
        var t = e.GetProperty("tensors").GetProperty(name);
        return tensor(t.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray(), dtype: float64)
            .reshape(t.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray());
    }

    [TestCase("tiny.pt")]
    [TestCase("tiny.safetensors")]
    public void PyTorchWeightsLoadWithTheirNamesShapesAndValues(string file)
    {
        var expected = Expected();
        var tree = WeightsFile.Load(Fixture(file));
        foreach (var name in new[] { "conv.weight", "conv.bias", "fc.weight", "fc.bias" })
        {
            Assert.That(tree[name].dtype, Is.EqualTo(ScalarType.Float32), name);
            TensorAssert.Close(tree[name].to(float64), Values(expected, name), 1e-6, 1e-7, name);
        }
        if (file.EndsWith(".safetensors"))
            TensorAssert.Same(tree["extra.f64"], Values(expected, "extra.f64"), "float64 survives bit for bit");
    }

    [TestCase("tiny.pt")]
    [TestCase("tiny.safetensors")]
    public void AModuleWithLoadedWeightsReproducesPyTorchsOutput(string file)
    {
        var expected = Expected();
        var module = new Tiny();
        if (file.EndsWith(".safetensors"))
        {
            // The safetensors fixture carries one tensor more than the module: LoadLike picks the module's own.
            var like = ParameterTree.FromModule(module);
            var extra = WeightsFile.Load(Fixture(file));
            Assert.That(extra.Contains("extra.f64"));
            var path = Temp("module.safetensors");
            WeightsFile.Save(path, extra.Select(like.Names));
            WeightsFile.LoadInto(module, path);
        }
        else
        {
            WeightsFile.LoadInto(module, Fixture(file));
        }
        var x = tensor(expected.GetProperty("input").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).reshape(2, 1, 4, 4);
        var y = tensor(expected.GetProperty("output").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).reshape(2, 3);
        using var _ = no_grad();
        TensorAssert.Close(module.call(x), y, 1e-5, 1e-6);
    }

    [Test]
    public void SavedSafetensorsRoundTripEveryDtypeAndShape()
    {
        var tree = ParameterTree.From(
            ("a.weight", randn(3, 4, generator: new Generator(1))), ("b", arange(5, dtype: int64)),
            ("c", tensor(new[] { true, false })), ("d", randn(2, 1, 3, dtype: float64, generator: new Generator(2))), ("e", zeros(0)));
        var path = Temp("round.safetensors");
        WeightsFile.Save(path, tree, new Dictionary<string, string> { ["format"] = "pt" });
        // The header is padded so the data starts 8-byte aligned.
        Assert.That(BitConverter.ToUInt64(File.ReadAllBytes(path), 0) % 8, Is.EqualTo(0UL));
        var back = WeightsFile.Load(path);
        Assert.That(back.Names, Is.EqualTo(tree.Names));
        for (var i = 0; i < tree.Count; i++)
        {
            Assert.That(back.Leaves[i].dtype, Is.EqualTo(tree.Leaves[i].dtype), tree.Names[i]);
            Assert.That(back.Leaves[i].shape, Is.EqualTo(tree.Leaves[i].shape), tree.Names[i]);
            Assert.That((back.Leaves[i] == tree.Leaves[i]).all().item<bool>(), tree.Names[i]);
        }
        Assert.Throws<IOException>(() => WeightsFile.Save(path, tree), "an existing file is never replaced");
    }

    [TestCase("tiny.pt")]
    [TestCase("tiny.safetensors")]
    public void WeightsOfAnotherArchitectureNameEveryMismatchedTensor(string file)
    {
        var module = new Tiny(outputs: 4);
        var before = ParameterTree.FromModule(module).Clone();
        var e = Assert.Throws<ArgumentException>(() => WeightsFile.LoadInto(module, Fixture(file)))!;
        Assert.That(e.Message, Does.Contain("'fc.weight' is [3, 8] in the file but [4, 8] in the model"));
        Assert.That(e.Message, Does.Contain("'fc.bias' is [3] in the file but [4] in the model"));
        Assert.That(e.Message, Does.Not.Contain("'conv.weight'"));
        // Nothing was copied.
        TensorAssert.Same(ParameterTree.FromModule(module)["conv.weight"], before["conv.weight"]);

        var missing = ParameterTree.From(("conv.weight", zeros(2, 1, 3, 3)), ("head.weight", zeros(3, 8)));
        var m = Assert.Throws<ArgumentException>(() => WeightsFile.LoadLike(Fixture(file), missing))!;
        Assert.That(m.Message, Does.Contain("missing 'head.weight' [3, 8]"));
        Assert.That(m.Message, Does.Contain("not in the model").And.Contain("'fc.bias' [3]"));
    }

    [Test]
    public void CorruptFilesAreReportedWithTheFileAndTheTensor()
    {
        var bytes = File.ReadAllBytes(Fixture("tiny.safetensors"));
        var truncated = Temp("truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..^10]);
        var e = Assert.Throws<InvalidDataException>(() => WeightsFile.Load(truncated))!;
        Assert.That(e.Message, Does.Contain(truncated).And.Contain("'extra.f64'").And.Contain("data_offsets"));

        var huge = Temp("huge.safetensors");
        var copy = (byte[])bytes.Clone();
        BitConverter.GetBytes(1UL << 40).CopyTo(copy, 0);
        File.WriteAllBytes(huge, copy);
        Assert.That(Assert.Throws<InvalidDataException>(() => WeightsFile.Load(huge))!.Message, Does.Contain("header length"));

        var notJson = Temp("garbage.safetensors");
        File.WriteAllBytes(notJson, BitConverter.GetBytes(4UL).Concat("{{{{"u8.ToArray()).ToArray());
        Assert.That(Assert.Throws<InvalidDataException>(() => WeightsFile.Load(notJson))!.Message, Does.Contain("not valid JSON"));

        var pt = File.ReadAllBytes(Fixture("tiny.pt"));
        var brokenPt = Temp("broken.pt");
        File.WriteAllBytes(brokenPt, pt[..(pt.Length / 2)]);
        Assert.That(Assert.Throws<InvalidDataException>(() => WeightsFile.Load(brokenPt))!.Message, Does.Contain(brokenPt));

        Assert.Throws<FileNotFoundException>(() => WeightsFile.Load(Temp("absent.pt")));
    }

    private static string Temp(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "posteriors-weights-" + TestContext.CurrentContext.Test.ID);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, name);
        if (File.Exists(path)) File.Delete(path);
        return path;
    }
}
