using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Serialization;

public class StateFileTests
{
    private sealed class DemoState : IPersistentState<DemoState>
    {
        public required ParameterTree Params { get; init; }
        public required long Step { get; init; }
        public required double Alpha { get; init; }
        public required Tensor Scalar { get; init; }
        public static string Kind => "Demo";
        public static int KindVersion => 2;
        public void WriteTo(StateRecord record)
        {
            record.Set("params", Params);
            record.Set("step", Step);
            record.Set("alpha", Alpha);
            record.Set("scalar", Scalar);
            record.Set("note", "hello");
        }
        public static DemoState ReadFrom(StateRecord record) => new()
        {
            Params = record.GetTree("params"), Step = record.GetLong("step"), Alpha = record.GetDouble("alpha"),
            Scalar = record.GetTensor("scalar"),
        };
    }

    private sealed class OtherState : IPersistentState<OtherState>
    {
        public static string Kind => "Other";
        public static int KindVersion => 1;
        public void WriteTo(StateRecord record) { }
        public static OtherState ReadFrom(StateRecord record) => new();
    }

    private sealed class OldReader : IPersistentState<OldReader>
    {
        public static string Kind => "Demo";
        public static int KindVersion => 1;
        public void WriteTo(StateRecord record) { }
        public static OldReader ReadFrom(StateRecord record) => new();
    }

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("posteriors-state-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static DemoState Make() => new()
    {
        Params = ParameterTree.From(("w", randn(3, 2)), ("b", tensor(new[] { 1.5, -2.0 })), ("i", tensor(new long[] { 4, 5 }))),
        Step = 42, Alpha = 0.125, Scalar = tensor(float.NaN),
    };

    [Test]
    public void RoundTripKeepsNamesOrderShapesDtypesAndBits()
    {
        var path = Path.Combine(_dir, "state.bin");
        var state = Make();
        StateFile.Save(path, state);
        var loaded = StateFile.Load<DemoState>(path);
        Assert.That(loaded.Params.Names, Is.EqualTo(state.Params.Names));
        for (var i = 0; i < state.Params.Count; i++)
        {
            Assert.That(loaded.Params.Leaves[i].dtype, Is.EqualTo(state.Params.Leaves[i].dtype));
            Assert.That(loaded.Params.Leaves[i].equal(state.Params.Leaves[i]).all().item<bool>(), Is.True, state.Params.Names[i]);
        }
        Assert.That(loaded.Step, Is.EqualTo(42));
        Assert.That(loaded.Alpha, Is.EqualTo(0.125));
        Assert.That(loaded.Scalar.item<float>(), Is.NaN);
    }

    [Test]
    public void CorruptTruncatedOrForeignFilesFailClearly()
    {
        var path = Path.Combine(_dir, "state.bin");
        StateFile.Save(path, Make());
        var bytes = File.ReadAllBytes(path);

        var flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, flipped);
        var e = Assert.Throws<InvalidDataException>(() => StateFile.Load<DemoState>(path));
        Assert.That(e!.Message, Does.Contain("corrupt"));

        File.WriteAllBytes(path, bytes[..(bytes.Length - 50)]);
        Assert.Throws<InvalidDataException>(() => StateFile.Load<DemoState>(path));

        File.WriteAllText(path, "definitely not a state file, but long enough to pass the length check of 40 bytes");
        e = Assert.Throws<InvalidDataException>(() => StateFile.Load<DemoState>(path));
        Assert.That(e!.Message, Does.Contain("not a Posteriors state file"));

        File.WriteAllBytes(path, bytes);
        e = Assert.Throws<InvalidDataException>(() => StateFile.Load<OtherState>(path));
        Assert.That(e!.Message, Does.Contain("Demo").And.Contain("Other"));
        e = Assert.Throws<InvalidDataException>(() => StateFile.Load<OldReader>(path));
        Assert.That(e!.Message, Does.Contain("version 2"));
        Assert.Throws<FileNotFoundException>(() => StateFile.Load<DemoState>(Path.Combine(_dir, "missing.bin")));
    }

    [Test]
    public void SavingReplacesAtomicallyAndLeavesNoTemporaryFiles()
    {
        var path = Path.Combine(_dir, "state.bin");
        StateFile.Save(path, Make());
        var first = File.ReadAllBytes(path);
        // A writer that fails half-way (a tensor the format cannot hold) must leave the previous file intact.
        var broken = new DemoState { Params = Make().Params, Step = 1, Alpha = 1, Scalar = null! };
        Assert.Catch(() => StateFile.Save(path, broken));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(first));
        Assert.That(Directory.GetFiles(_dir), Is.EquivalentTo(new[] { path }), "no temporary file is left behind");
        StateFile.Save(path, Make());
        Assert.That(StateFile.Load<DemoState>(path).Step, Is.EqualTo(42));
    }
}
