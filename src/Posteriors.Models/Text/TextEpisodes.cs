using static TorchSharp.torch;

namespace Posteriors.Models.Text;

/// <summary>One text ("book") split into a training head and a held-out tail, as token ids.</summary>
/// <param name="Name">A label for tables and plots.</param>
/// <param name="Train">Training ids [length].</param>
/// <param name="Test">Held-out ids [length] (the last part of the text).</param>
public sealed record TextBook(string Name, Tensor Train, Tensor Test);

/// <summary>Turns texts into train/test token streams and mini-batches of windows for a character language model.</summary>
public static class TextEpisodes
{
    /// <summary>
    /// Splits <paramref name="text"/> into its first (1 − <paramref name="testFraction"/>) for training and the rest
    /// for testing, encoded with <paramref name="vocabulary"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="testFraction"/> is not in (0, 1), or a part would be shorter than two characters.</exception>
    public static TextBook Split(string name, string text, CharVocabulary vocabulary, double testFraction = 0.15, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "The held-out fraction must be in (0, 1).");
        var cut = (int)Math.Round(text.Length * (1 - testFraction));
        if (cut < 2 || text.Length - cut < 2)
            throw new ArgumentOutOfRangeException(nameof(text), text.Length, $"Text '{name}' of {text.Length} characters is too short to split at {testFraction}.");
        return new TextBook(name, vocabulary.Encode(text[..cut], device), vocabulary.Encode(text[cut..], device));
    }

    /// <summary>
    /// A random mini-batch of <paramref name="batchSize"/> windows of <paramref name="length"/> + 1 consecutive ids
    /// from <paramref name="ids"/>: [batchSize, length + 1] (inputs and next-token targets).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The stream is shorter than one window, or a size is not positive.</exception>
    public static Tensor RandomWindows(Tensor ids, int batchSize, int length, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Must be positive.");
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, "Must be positive.");
        var starts = ids.shape[0] - length;
        if (starts <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"A window of {length + 1} ids does not fit a stream of {ids.shape[0]}.");
        using var scope = NewDisposeScope();
        var start = randint(0, starts, new long[] { batchSize, 1 }, generator: generator, dtype: ScalarType.Int64).to(ids.device);
        var offsets = arange(length + 1, dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        return ids.take(start + offsets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The whole stream as consecutive windows of <paramref name="length"/> + 1 ids overlapping by one (every id after
    /// the first is predicted exactly once; a remainder shorter than a window is dropped): [count, length + 1].
    /// </summary>
    public static Tensor AllWindows(Tensor ids, int length)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, "Must be positive.");
        var count = (ids.shape[0] - 1) / length;
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"A window of {length + 1} ids does not fit a stream of {ids.shape[0]}.");
        using var scope = NewDisposeScope();
        var start = arange(count, dtype: ScalarType.Int64, device: ids.device).unsqueeze(1) * length;
        var offsets = arange(length + 1, dtype: ScalarType.Int64, device: ids.device).unsqueeze(0);
        return ids.take(start + offsets).MoveToOuterDisposeScope();
    }
}
