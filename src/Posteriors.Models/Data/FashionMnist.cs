using static TorchSharp.torch;

namespace Posteriors.Models.Data;

/// <summary>
/// Fashion-MNIST (Xiao et al. 2017): 60,000 training and 10,000 test 28×28 grey-scale images of 10 clothing classes,
/// read from the IDX files of Debian's <c>dataset-fashion-mnist</c> package (or any folder holding the four files).
/// </summary>
public static class FashionMnist
{
    /// <summary>The Debian package that ships the data set.</summary>
    public const string DebianPackage = "dataset-fashion-mnist";

    /// <summary>Where the Debian package installs the files.</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Environment variable naming a folder with the four IDX files; searched before the Debian folder.</summary>
    public const string EnvironmentVariable = "POSTERIORS_FASHION_MNIST";

    /// <summary>The command that installs the data set on Debian/Ubuntu (as root).</summary>
    public const string InstallCommand = "apt-get update && apt-get install -y " + DebianPackage;

    /// <summary>Number of training images in the real data set.</summary>
    public const int TrainCount = 60_000;

    /// <summary>Number of test images in the real data set.</summary>
    public const int TestCount = 10_000;

    /// <summary>Image side length in pixels.</summary>
    public const int Side = 28;

    /// <summary>The ten class names, by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    private static readonly string[] TrainFiles = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" };
    private static readonly string[] TestFiles = { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" };

    /// <summary>
    /// The first folder holding the four files: <paramref name="folder"/> when given, else the folder in
    /// <see cref="EnvironmentVariable"/>, else <see cref="DebianFolder"/>; <c>null</c> when none has them.
    /// </summary>
    public static string? Find(string? folder = null)
    {
        var candidates = folder is not null
            ? new[] { folder }
            : new[] { Environment.GetEnvironmentVariable(EnvironmentVariable), DebianFolder };
        foreach (var c in candidates)
            if (!string.IsNullOrEmpty(c) && TrainFiles.Concat(TestFiles).All(f => FindFile(c, f) is not null))
                return c;
        return null;
    }

    /// <summary>
    /// Loads the training and test sets, checking magic numbers, image sizes (28×28), counts and labels.
    /// </summary>
    /// <param name="folder">A folder with the four IDX files (gzip or not); <c>null</c> searches as <see cref="Find"/> does.</param>
    /// <param name="requireFullSize">Also require the real set's 60,000/10,000 images (off for tests with small files).</param>
    /// <exception cref="DataSetException">The files are missing (the message says how to install them), truncated or corrupt.</exception>
    public static (ImageDataSet Train, ImageDataSet Test) Load(string? folder = null, bool requireFullSize = true)
    {
        var found = Find(folder) ?? throw new DataSetException(
            $"Fashion-MNIST was not found ({(folder is not null ? $"looked in '{folder}'" : $"looked in ${EnvironmentVariable} and {DebianFolder}")}; " +
            "need train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, optionally .gz). " +
            $"Install it with: sudo {InstallCommand}   (or set {EnvironmentVariable} to a folder holding the four files).", folder ?? DebianFolder);
        var train = LoadPart(found, TrainFiles, requireFullSize ? TrainCount : null);
        var test = LoadPart(found, TestFiles, requireFullSize ? TestCount : null);
        return (train, test);
    }

    private static ImageDataSet LoadPart(string folder, string[] files, int? expectedCount)
    {
        var imagesPath = FindFile(folder, files[0])!;
        var labelsPath = FindFile(folder, files[1])!;
        var hint = $" Reinstall the data with: sudo apt-get install --reinstall {DebianPackage}";
        Tensor images, labels;
        try
        {
            images = Idx.ReadImages(imagesPath);
            labels = Idx.ReadLabels(labelsPath);
        }
        catch (DataSetException e)
        {
            throw new DataSetException(e.Message + hint, e.Path, e);
        }
        if (images.shape[2] != Side || images.shape[3] != Side)
            throw new DataSetException($"'{imagesPath}' holds {images.shape[2]}×{images.shape[3]} images; Fashion-MNIST's are {Side}×{Side}.{hint}", imagesPath);
        if (images.shape[0] != labels.shape[0])
            throw new DataSetException($"'{imagesPath}' holds {images.shape[0]} images but '{labelsPath}' {labels.shape[0]} labels.{hint}", labelsPath);
        if (expectedCount is { } n && images.shape[0] != n)
            throw new DataSetException($"'{imagesPath}' holds {images.shape[0]} images; Fashion-MNIST's file holds {n}.{hint}", imagesPath);
        var max = labels.numel() > 0 ? labels.max().item<long>() : 0;
        if (max >= ClassNames.Count)
            throw new DataSetException($"'{labelsPath}' has label {max}; Fashion-MNIST's labels are 0–9.{hint}", labelsPath);
        return new ImageDataSet(images, labels, ClassNames.Count, folder);
    }

    private static string? FindFile(string folder, string name)
    {
        foreach (var candidate in new[] { Path.Combine(folder, name + ".gz"), Path.Combine(folder, name) })
            if (File.Exists(candidate)) return candidate;
        return null;
    }
}
