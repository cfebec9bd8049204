using static TorchSharp.torch;

namespace Posteriors.Models.Data;

/// <summary>
/// A labelled image data set held in memory: images as float32 in [0, 1] shaped [N, channels, height, width],
/// labels as int64 [N].
/// </summary>
public sealed class ImageDataSet
{
    /// <summary>Creates a data set, checking that images and labels agree.</summary>
    /// <param name="images">[N, C, H, W] floating-point images.</param>
    /// <param name="labels">[N] int64 class indices in [0, <paramref name="classes"/>).</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="source">Where the data came from (a folder, or a description of a synthetic set), for reports.</param>
    /// <param name="isSynthetic">Whether the data are synthetic stand-ins rather than the real set.</param>
    /// <exception cref="ArgumentException">Shapes disagree, labels are not int64, or a label is out of range.</exception>
    public ImageDataSet(Tensor images, Tensor labels, int classes, string source, bool isSynthetic = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.dim() != 4)
            throw new ArgumentException($"Images must be [N, C, H, W]; got [{string.Join(", ", images.shape)}].", nameof(images));
        if (labels.dim() != 1 || labels.shape[0] != images.shape[0])
            throw new ArgumentException(
                $"Labels must be [N] with N = {images.shape[0]} images; got [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"Labels must be int64; got {labels.dtype}.", nameof(labels));
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "A classification data set needs at least two classes.");
        if (labels.numel() > 0)
        {
            var min = labels.min().item<long>();
            var max = labels.max().item<long>();
            if (min < 0 || max >= classes)
                throw new ArgumentException($"Labels must lie in [0, {classes}); found values from {min} to {max}.", nameof(labels));
        }
        Images = images;
        Labels = labels;
        Classes = classes;
        Source = source ?? throw new ArgumentNullException(nameof(source));
        IsSynthetic = isSynthetic;
    }

    /// <summary>[N, C, H, W] images.</summary>
    public Tensor Images { get; }

    /// <summary>[N] int64 labels.</summary>
    public Tensor Labels { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Where the data came from.</summary>
    public string Source { get; }

    /// <summary>Whether this is a synthetic stand-in for the real data set.</summary>
    public bool IsSynthetic { get; }

    /// <summary>Number of examples.</summary>
    public long Count => Images.shape[0];

    /// <summary>
    /// A random subset of <paramref name="count"/> examples (all of them, shuffled, when <paramref name="count"/> ≥
    /// <see cref="Count"/>), chosen with <paramref name="seed"/>. The images are copied.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
    public ImageDataSet Subset(long count, long seed)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "A subset needs at least one example.");
        var n = Math.Min(count, Count);
        using var scope = NewDisposeScope();
        var idx = randperm(Count, generator: new Generator((ulong)seed)).narrow(0, 0, n).to(Images.device);
        var images = Images.index_select(0, idx).MoveToOuterDisposeScope();
        var labels = Labels.index_select(0, idx).MoveToOuterDisposeScope();
        return new ImageDataSet(images, labels, Classes, Source, IsSynthetic);
    }

    /// <summary>The first <paramref name="count"/> examples (a view, no copy).</summary>
    public ImageDataSet Take(long count)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "Need at least one example.");
        var n = Math.Min(count, Count);
        return new ImageDataSet(Images.narrow(0, 0, n), Labels.narrow(0, 0, n), Classes, Source, IsSynthetic);
    }

    /// <summary>The same data on <paramref name="device"/>.</summary>
    public ImageDataSet To(Device device) => new(Images.to(device), Labels.to(device), Classes, Source, IsSynthetic);

    /// <summary>
    /// Shuffled mini-batches for <paramref name="epochs"/> passes over the data, a fresh permutation per epoch drawn
    /// from <paramref name="generator"/>. The last incomplete batch of an epoch is dropped so every step sees
    /// <paramref name="batchSize"/> examples (an unbiased gradient estimate of the same variance).
    /// </summary>
    /// <remarks>
    /// Each batch's tensors are disposed when the next batch is requested (or the enumeration ends): clone what
    /// must outlive one step. The tensors belong to no dispose scope, so a consumer's scope cannot free them early.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is not in [1, Count], or <paramref name="epochs"/> is negative.</exception>
    public IEnumerable<(Tensor X, Tensor Y)> Batches(int batchSize, int epochs, Generator generator)
    {
        if (batchSize < 1 || batchSize > Count)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"The batch size must be between 1 and the data set size {Count}.");
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "The number of epochs must be non-negative.");
        ArgumentNullException.ThrowIfNull(generator);
        return Iterate(batchSize, epochs, generator);
    }

    /// <summary>Number of steps one epoch of <see cref="Batches"/> takes.</summary>
    public long StepsPerEpoch(int batchSize) => Count / batchSize;

    private IEnumerable<(Tensor X, Tensor Y)> Iterate(int batchSize, int epochs, Generator generator)
    {
        var steps = StepsPerEpoch(batchSize);
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            var order = randperm(Count, generator: generator).DetachFromDisposeScope();
            try
            {
                for (long s = 0; s < steps; s++)
                {
                    Tensor x, y;
                    using (NewDisposeScope())
                    {
                        var idx = order.narrow(0, s * batchSize, batchSize).to(Images.device);
                        x = Images.index_select(0, idx).DetachFromDisposeScope();
                        y = Labels.index_select(0, idx).DetachFromDisposeScope();
                    }
                    try
                    {
                        yield return (x, y);
                    }
                    finally
                    {
                        x.Dispose();
                        y.Dispose();
                    }
                }
            }
            finally
            {
                order.Dispose();
            }
        }
    }

    /// <summary>Consecutive (unshuffled) batches covering every example once, for evaluation.</summary>
    public IEnumerable<(Tensor X, Tensor Y)> Sequential(int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be positive.");
        for (long start = 0; start < Count; start += batchSize)
        {
            var n = Math.Min(batchSize, Count - start);
            yield return (Images.narrow(0, start, n), Labels.narrow(0, start, n));
        }
    }
}
