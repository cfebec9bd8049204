using static TorchSharp.torch;

namespace Posteriors.Models.Text;

/// <summary>
/// A character vocabulary: id 0 is reserved for characters never seen when it was built (foreign scripts,
/// symbols), the others are the distinct characters of the building texts in ordinal order.
/// </summary>
public sealed class CharVocabulary
{
    private readonly Dictionary<char, long> _ids;
    private readonly char[] _chars;

    /// <summary>The id of a character not in the vocabulary.</summary>
    public const long Unknown = 0;

    /// <summary>Builds the vocabulary of every character in <paramref name="texts"/>.</summary>
    /// <exception cref="ArgumentException">No text or no character was given.</exception>
    public CharVocabulary(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var distinct = new SortedSet<char>(texts.SelectMany(t => t ?? throw new ArgumentException("A text is null.", nameof(texts))));
        if (distinct.Count == 0) throw new ArgumentException("The texts contain no characters.", nameof(texts));
        _chars = new[] { '\uFFFD' }.Concat(distinct).ToArray();
        _ids = new Dictionary<char, long>();
        for (var i = 1; i < _chars.Length; i++) _ids[_chars[i]] = i;
    }

    /// <summary>Number of ids, including <see cref="Unknown"/>.</summary>
    public int Size => _chars.Length;

    /// <summary>The ids of <paramref name="text"/> as an int64 tensor [length] on <paramref name="device"/> (CPU when null).</summary>
    public Tensor Encode(string text, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new long[text.Length];
        for (var i = 0; i < text.Length; i++) ids[i] = _ids.TryGetValue(text[i], out var id) ? id : Unknown;
        var t = tensor(ids, dtype: ScalarType.Int64);
        return device is null ? t : t.to(device);
    }

    /// <summary>The text of a sequence of ids (unknown ids become U+FFFD).</summary>
    public string Decode(IEnumerable<long> ids) => new(ids.Select(i => i >= 0 && i < _chars.Length ? _chars[i] : '\uFFFD').ToArray());
}
