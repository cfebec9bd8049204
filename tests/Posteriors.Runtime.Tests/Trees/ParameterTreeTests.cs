using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Trees;

public class ParameterTreeTests
{
    private static ParameterTree Sample() => ParameterTree.From(
        ("b", tensor(new[] { 1.0, 2.0 })),
        ("a", tensor(new[,] { { 3.0, 4.0, 5.0 }, { 6.0, 7.0, 8.0 } })));

    private static double[] Values(Tensor t) => t.to_type(ScalarType.Float64).reshape(-1).data<double>().ToArray();

    [Test]
    public void KeepsInsertionOrderAndCountsElements()
    {
        var tree = Sample();
        Assert.That(tree.Names, Is.EqualTo(new[] { "b", "a" }));
        Assert.That(tree.Count, Is.EqualTo(2));
        Assert.That(tree.NumberOfElements, Is.EqualTo(8));
        Assert.That(tree.IndexOf("a"), Is.EqualTo(1));
    }

    [Test]
    public void FlattenFollowsTreeOrderRowMajorAndUnflattenInverts()
    {
        var tree = Sample();
        var flat = tree.Flatten();
        Assert.That(Values(flat), Is.EqualTo(new[] { 1.0, 2.0, 3, 4, 5, 6, 7, 8 }));
        var back = tree.Unflatten(flat * 2);
        Assert.That(back["a"].shape, Is.EqualTo(new long[] { 2, 3 }));
        Assert.That(Values(back["a"]), Is.EqualTo(new[] { 6.0, 8, 10, 12, 14, 16 }));
        Assert.That(Values(back["b"]), Is.EqualTo(new[] { 2.0, 4 }));
    }

    [Test]
    public void LayoutLocatesEveryLeafInTheFlatVectorAndUnflattenRowsInvertsRowByRow()
    {
        var tree = Sample();
        var layout = tree.Layout;
        Assert.That(layout.Select(l => (l.Name, l.Offset, l.Length)), Is.EqualTo(new[] { ("b", 0L, 2L), ("a", 2L, 6L) }));
        Assert.That(layout[1].Shape, Is.EqualTo(new long[] { 2, 3 }));
        var flat = tree.Flatten();
        foreach (var slot in layout) TensorAssert.Same(flat.narrow(0, slot.Offset, slot.Length), tree[slot.Name].reshape(-1), slot.Name);
        var rows = stack(new[] { flat, flat * 2, flat * 3 });
        var back = tree.UnflattenRows(rows);
        Assert.That(back["a"].shape, Is.EqualTo(new long[] { 3, 2, 3 }));
        TensorAssert.Same(back["a"][2], tree["a"] * 3, "row 2 of a");
        Assert.That(Assert.Throws<ArgumentException>(() => tree.UnflattenRows(flat))!.Message, Does.Contain("[n, 8]"));
    }

    [Test]
    public void UnflattenOfWrongLengthNamesTheTree()
    {
        var e = Assert.Throws<ArgumentException>(() => Sample().Unflatten(zeros(7, dtype: ScalarType.Float64)));
        Assert.That(e!.Message, Does.Contain("length 7").And.Contain("8 elements").And.Contain("a [2, 3]"));
        Assert.Throws<ArgumentException>(() => Sample().Unflatten(zeros(2, 4, dtype: ScalarType.Float64)));
    }

    [Test]
    public void FlattenRejectsMixedDtypesNamingTheParameter()
    {
        var tree = ParameterTree.From(("x", zeros(2)), ("y", zeros(2, dtype: ScalarType.Float64)));
        var e = Assert.Throws<InvalidOperationException>(() => tree.Flatten());
        Assert.That(e!.Message, Does.Contain("'y'"));
    }

    [Test]
    public void MapIsCopyingAndMapInPlaceWritesIntoLeaves()
    {
        var tree = Sample();
        var doubled = tree.Map(t => t * 2);
        Assert.That(Values(tree["b"]), Is.EqualTo(new[] { 1.0, 2.0 }), "copying map leaves the source alone");
        Assert.That(Values(doubled["b"]), Is.EqualTo(new[] { 2.0, 4.0 }));
        var leafBefore = tree["b"];
        tree.MapInPlace(t => t + 1);
        Assert.That(leafBefore, Is.SameAs(tree["b"]));
        Assert.That(Values(tree["b"]), Is.EqualTo(new[] { 2.0, 3.0 }));
    }

    [Test]
    public void ZipMapChecksStructureByName()
    {
        var tree = Sample();
        var sum = tree.ZipMap(tree, (x, y) => x + y);
        Assert.That(Values(sum["a"])[5], Is.EqualTo(16.0));
        var renamed = ParameterTree.From(("b", zeros(2, dtype: ScalarType.Float64)), ("c", zeros(2, 3, dtype: ScalarType.Float64)));
        var e = Assert.Throws<ArgumentException>(() => tree.ZipMap(renamed, (x, y) => x + y));
        Assert.That(e!.Message, Does.Contain("'c'").And.Contain("'a'"));
        var reshaped = ParameterTree.From(("b", zeros(2, dtype: ScalarType.Float64)), ("a", zeros(3, 2, dtype: ScalarType.Float64)));
        e = Assert.Throws<ArgumentException>(() => tree.ZipMapInPlace(reshaped, (x, y) => x + y));
        Assert.That(e!.Message, Does.Contain("'a'").And.Contain("[3, 2]"));
    }

    [Test]
    public void SelectAndInsertWorkOnSubsets()
    {
        var tree = Sample();
        var subset = tree.Select(new[] { "a" });
        Assert.That(subset.Names, Is.EqualTo(new[] { "a" }));
        Assert.That(ReferenceEquals(subset["a"], tree["a"]), Is.True, "select shares leaves");
        var replaced = tree.Insert(subset.Map(t => t * 0));
        Assert.That(Values(replaced["a"]), Is.All.EqualTo(0));
        Assert.That(replaced["b"], Is.SameAs(tree["b"]));
        Assert.That(Values(tree["a"])[0], Is.EqualTo(3.0), "insert copies the tree, not the values");
        tree.InsertInPlace(subset.Map(t => t * 0 + 1));
        Assert.That(Values(tree["a"]), Is.All.EqualTo(1));
        Assert.Throws<KeyNotFoundException>(() => tree.Select(new[] { "zz" }));
        Assert.Throws<ArgumentException>(() => tree.Insert(ParameterTree.From(("a", zeros(6, dtype: ScalarType.Float64)))));
    }

    [Test]
    public void FromModuleSharesParametersAndCanKeepTrainableOnly()
    {
        var module = nn.Sequential(("fc1", nn.Linear(3, 2)), ("fc2", nn.Linear(2, 1)));
        var tree = ParameterTree.FromModule(module);
        Assert.That(tree.Names, Is.EqualTo(new[] { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" }));
        Assert.That(tree.NumberOfElements, Is.EqualTo(6 + 2 + 2 + 1));
        ((nn.Module)module).named_parameters().First().parameter.requires_grad_(false);
        var trainable = ParameterTree.FromModule(module, trainableOnly: true);
        Assert.That(trainable.Names, Is.EqualTo(new[] { "fc1.bias", "fc2.weight", "fc2.bias" }));
        Assert.That(tree.RequiringGrad().Names, Is.EqualTo(trainable.Names));
    }

    [Test]
    public void CloneDetachesAndCopies()
    {
        var x = tensor(new[] { 1.0f }, requires_grad: true);
        var tree = ParameterTree.From(("x", x * 2));
        var clone = tree.Clone();
        Assert.That(clone["x"].requires_grad, Is.False);
        clone["x"].add_(1);
        Assert.That(tree["x"].item<float>(), Is.EqualTo(2f));
    }

    [Test]
    public void ToConvertsDtypeAndDotSums()
    {
        var tree = Sample().To(ScalarType.Float32);
        Assert.That(tree.ScalarType, Is.EqualTo(ScalarType.Float32));
        Assert.That(Sample().Dot(Sample()).item<double>(), Is.EqualTo(1 + 4 + 9 + 16 + 25 + 36 + 49 + 64));
    }

    [Test]
    public void ConstructorRejectsDuplicatesAndNulls()
    {
        Assert.Throws<ArgumentException>(() => ParameterTree.From(("x", zeros(1)), ("x", zeros(1))));
        Assert.Throws<ArgumentException>(() => ParameterTree.From(("", zeros(1))));
        var e = Assert.Throws<KeyNotFoundException>(() => _ = Sample()["nope"]);
        Assert.That(e!.Message, Does.Contain("'nope'").And.Contain("b, a"));
    }
}
