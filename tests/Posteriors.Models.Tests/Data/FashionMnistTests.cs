using Posteriors.Models.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models.Tests.Data;

public class FashionMnistTests
{
    private string _dir = "";

    [SetUp]
    public void MakeFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "posteriors-idx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveFolder() => Directory.Delete(_dir, recursive: true);

    /// <summary>n images whose pixel (0, 0) encodes the index, labels i mod 10.</summary>
    private void WriteSet(string prefix, int n, bool gzip = true)
    {
        var pixels = new byte[n * 28 * 28];
        for (var i = 0; i < n; i++) pixels[i * 28 * 28] = (byte)(i * 2);
        Idx.Write(Path.Combine(_dir, $"{prefix}-images-idx3-ubyte" + (gzip ? ".gz" : "")), new[] { n, 28, 28 }, pixels, gzip);
        Idx.Write(Path.Combine(_dir, $"{prefix}-labels-idx1-ubyte" + (gzip ? ".gz" : "")), new[] { n },
            Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray(), gzip);
    }

    [Test]
    public void ValidFilesLoadWithValuesAndShapes([Values] bool gzip)
    {
        WriteSet("train", 12, gzip);
        WriteSet("t10k", 5, gzip);
        var (train, test) = FashionMnist.Load(_dir, requireFullSize: false);
        Assert.That(train.Images.shape, Is.EqualTo(new long[] { 12, 1, 28, 28 }));
        Assert.That(test.Labels.shape, Is.EqualTo(new long[] { 5 }));
        Assert.That(train.Images.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(train.Images[7, 0, 0, 0].item<float>(), Is.EqualTo(14f / 255f).Within(1e-7));
        Assert.That(train.Images[7, 0, 0, 1].item<float>(), Is.EqualTo(0f));
        Assert.That(train.Labels[11].item<long>(), Is.EqualTo(1));
        Assert.That(train.IsSynthetic, Is.False);
        Assert.That(FashionMnist.Find(_dir), Is.EqualTo(_dir));
    }

    [Test]
    public void TruncatedFileIsReportedWithItsPathAndByteCounts()
    {
        WriteSet("train", 4, gzip: false);
        WriteSet("t10k", 4, gzip: false);
        var path = Path.Combine(_dir, "train-images-idx3-ubyte");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^100]);
        var e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir, requireFullSize: false));
        Assert.That(e!.Message, Does.Contain("truncated").And.Contain(path).And.Contain("apt-get install"));
        Assert.That(e.Path, Is.EqualTo(path));
    }

    [Test]
    public void TruncatedGzipIsReported()
    {
        WriteSet("train", 40);
        WriteSet("t10k", 4);
        var path = Path.Combine(_dir, "train-images-idx3-ubyte.gz");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir, requireFullSize: false));
        Assert.That(e!.Message, Does.Contain(path));
    }

    [Test]
    public void WrongMagicNumberIsReported()
    {
        WriteSet("train", 4);
        WriteSet("t10k", 4);
        // A labels file where the images file belongs: magic 0x801 instead of 0x803.
        File.Copy(Path.Combine(_dir, "t10k-labels-idx1-ubyte.gz"), Path.Combine(_dir, "t10k-images-idx3-ubyte.gz"), overwrite: true);
        var e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir, requireFullSize: false));
        Assert.That(e!.Message, Does.Contain("0x00000801").And.Contain("0x00000803"));
    }

    [Test]
    public void WrongCountOrSizeIsReported()
    {
        WriteSet("train", 4);
        WriteSet("t10k", 4);
        var e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir, requireFullSize: true));
        Assert.That(e!.Message, Does.Contain("60000"));
        Idx.Write(Path.Combine(_dir, "t10k-images-idx3-ubyte.gz"), new[] { 4, 14, 56 }, new byte[4 * 14 * 56]);
        e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir, requireFullSize: false));
        Assert.That(e!.Message, Does.Contain("14×56"));
    }

    [Test]
    public void MissingFilesSayHowToInstall()
    {
        var e = Assert.Throws<DataSetException>(() => FashionMnist.Load(_dir));
        Assert.That(e!.Message, Does.Contain("apt-get install -y dataset-fashion-mnist").And.Contain(FashionMnist.EnvironmentVariable));
        Assert.That(FashionMnist.Find(_dir), Is.Null);
    }

    [Test]
    public void BatchesAreShuffledCoverEveryExampleOncePerEpochAndAreReproducible()
    {
        WriteSet("train", 20);
        WriteSet("t10k", 4);
        var (train, _) = FashionMnist.Load(_dir, requireFullSize: false);
        List<long> Ids(int seed) => train.Batches(batchSize: 5, epochs: 2, new Generator((ulong)seed))
            .SelectMany(b =>
            {
                Assert.That(b.X.shape, Is.EqualTo(new long[] { 5, 1, 28, 28 }));
                // Pixel (0, 0) encodes the index; the label must travel with its image.
                var ids = (b.X[.., 0, 0, 0] * 255f / 2f).round().to_type(ScalarType.Int64).data<long>().ToArray();
                Assert.That(b.Y.data<long>().ToArray(), Is.EqualTo(ids.Select(i => i % 10).ToArray()));
                return ids;
            }).ToList();
        var a = Ids(1);
        Assert.That(a, Has.Count.EqualTo(40));
        Assert.That(a.Take(20).Order(), Is.EqualTo(Enumerable.Range(0, 20).Select(i => (long)i)));
        Assert.That(a.Skip(20).Order(), Is.EqualTo(Enumerable.Range(0, 20).Select(i => (long)i)));
        Assert.That(a.Take(20), Is.Not.EqualTo(Enumerable.Range(0, 20).Select(i => (long)i)), "not shuffled");
        Assert.That(a.Take(20), Is.Not.EqualTo(a.Skip(20)), "same permutation in both epochs");
        Assert.That(Ids(1), Is.EqualTo(a));
        Assert.Throws<ArgumentOutOfRangeException>(() => train.Batches(0, 1, new Generator(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => train.Batches(21, 1, new Generator(1)));
    }

    [Test]
    public void SyntheticStandInIsLabelledAndShaped()
    {
        var (train, test) = SyntheticImages.Generate(50, 20, seed: 3);
        Assert.That((train.IsSynthetic, test.IsSynthetic), Is.EqualTo((true, true)), "(train, test) synthetic");
        Assert.That(train.Source, Does.Contain("synthetic"));
        Assert.That(train.Images.shape, Is.EqualTo(new long[] { 50, 1, 28, 28 }));
        Assert.That(train.Images.min().item<float>(), Is.GreaterThanOrEqualTo(0f), "smallest pixel");
        Assert.That(train.Images.max().item<float>(), Is.LessThanOrEqualTo(1f), "largest pixel");
    }
}
