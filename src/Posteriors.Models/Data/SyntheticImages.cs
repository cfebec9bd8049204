using static TorchSharp.torch;

namespace Posteriors.Models.Data;

/// <summary>
/// A small synthetic stand-in for Fashion-MNIST when the real files are not installed: 28×28 images of
/// <c>classes</c> fixed random blurred templates, each example shifted by up to two pixels, scaled in contrast and
/// overlaid with pixel noise. It is learnable but not trivial, and is always labelled as synthetic.
/// </summary>
public static class SyntheticImages
{
    /// <summary>Generates training and test sets from one seed (the same templates in both).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A count is not positive or <paramref name="classes"/> &lt; 2.</exception>
    public static (ImageDataSet Train, ImageDataSet Test) Generate(int trainCount, int testCount, long seed, int classes = 10)
    {
        if (trainCount <= 0) throw new ArgumentOutOfRangeException(nameof(trainCount), trainCount, "Need at least one training image.");
        if (testCount <= 0) throw new ArgumentOutOfRangeException(nameof(testCount), testCount, "Need at least one test image.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        var g = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        // Low-resolution random patterns upsampled to 28×28 give smooth, garment-sized blobs per class.
        var coarse = rand(new long[] { classes, 1, 7, 7 }, generator: g);
        var templates = nn.functional.interpolate(coarse, new long[] { 28, 28 }, mode: InterpolationMode.Bilinear, align_corners: false);
        var source = $"synthetic stand-in for Fashion-MNIST ({classes} random templates, seed {seed}; install {FashionMnist.DebianPackage} for the real data)";
        var train = Draw(templates, trainCount, g, classes, source);
        var test = Draw(templates, testCount, g, classes, source);
        train.Images.MoveToOuterDisposeScope(); train.Labels.MoveToOuterDisposeScope();
        test.Images.MoveToOuterDisposeScope(); test.Labels.MoveToOuterDisposeScope();
        return (train, test);
    }

    private static ImageDataSet Draw(Tensor templates, int n, Generator g, int classes, string source)
    {
        var labels = randint(0, classes, new long[] { n }, dtype: ScalarType.Int64, generator: g);
        var images = templates.index_select(0, labels);
        var shifts = randint(-2, 3, new long[] { 2 }, generator: g);
        // One roll per set keeps this fast; per-example variation comes from contrast and noise.
        images = images.roll(new long[] { shifts[0].item<long>(), shifts[1].item<long>() }, new long[] { 2, 3 });
        var contrast = 0.6 + 0.8 * rand(new long[] { n, 1, 1, 1 }, generator: g);
        images = (images * contrast + 0.35 * randn(images.shape, generator: g)).clamp(0, 1);
        return new ImageDataSet(images, labels, classes, source, isSynthetic: true);
    }
}
