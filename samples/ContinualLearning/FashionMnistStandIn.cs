using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>
/// A synthetic stand-in for Fashion-MNIST with the loader's interface (images float32 in [0, 1] [N, 1, 28, 28],
/// labels int64 [N], ten classes): each class is a smooth random prototype; an image is its class prototype,
/// a little of another class's, and pixel noise.
/// </summary>
internal static class FashionMnistStandIn
{
    public static ((Tensor Images, Tensor Labels) Train, (Tensor Images, Tensor Labels) Test) Generate(int trainCount, int testCount, long seed)
    {
        var g = new Generator((ulong)seed);
        // Smooth prototypes: 7×7 noise upsampled to 28×28, so classes overlap in low-frequency features as real garments do.
        var coarse = rand(new long[] { 10, 1, 7, 7 }, generator: g);
        var prototypes = nn.functional.interpolate(coarse, new long[] { 28, 28 }, mode: InterpolationMode.Bilinear, align_corners: false);
        (Tensor, Tensor) Draw(int n)
        {
            var labels = randint(0, 10, new long[] { n }, generator: g, dtype: ScalarType.Int64);
            var other = randint(0, 10, new long[] { n }, generator: g, dtype: ScalarType.Int64);
            var mix = 0.4 * rand(new long[] { n, 1, 1, 1 }, generator: g);
            var images = (1 - mix) * prototypes[labels] + mix * prototypes[other] + 0.25 * randn(new long[] { n, 1, 28, 28 }, generator: g);
            return (images.clamp(0, 1), labels);
        }
        return (Draw(trainCount), Draw(testCount));
    }
}
