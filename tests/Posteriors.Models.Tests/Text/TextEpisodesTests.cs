using Posteriors.Models.Text;
using static TorchSharp.torch;

namespace Posteriors.Models.Tests.Text;

public class TextEpisodesTests
{
    [Test]
    public void SplitHoldsOutTheTailAndUnknownCharactersMapToZero()
    {
        var vocab = new CharVocabulary(new[] { "abcabc" });
        Assert.That(vocab.Size, Is.EqualTo(4));
        Assert.That(vocab.Encode("aä").data<long>().ToArray(), Is.EqualTo(new long[] { 1, CharVocabulary.Unknown }));
        var text = new string('a', 85) + new string('b', 15);
        var book = TextEpisodes.Split("x", text, vocab, testFraction: 0.15);
        Assert.That(book.Train.shape[0], Is.EqualTo(85));
        Assert.That(vocab.Decode(book.Test.data<long>().ToArray()), Is.EqualTo(new string('b', 15)));
        Assert.That(() => TextEpisodes.Split("x", text, vocab, testFraction: 1.0), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void WindowsAreConsecutiveIdsAndAllWindowsPredictEveryIdOnce()
    {
        var ids = arange(50, dtype: ScalarType.Int64);
        var w = TextEpisodes.RandomWindows(ids, batchSize: 7, length: 5, new Generator(3));
        Assert.That(w.shape, Is.EqualTo(new long[] { 7, 6 }));
        TensorAssert.Same(w.diff(dim: 1), ones(7, 5, dtype: ScalarType.Int64));
        var all = TextEpisodes.AllWindows(ids, length: 7);
        Assert.That(all.shape, Is.EqualTo(new long[] { 7, 8 }));
        var targets = all[.., 1..].reshape(-1);
        TensorAssert.Same(targets, arange(1, 50, dtype: ScalarType.Int64));
    }
}
