using System.CommandLine;
using Posteriors.Models.Text;
using Posteriors.Models.Transformers;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples;

/// <summary>The license texts as a pre-training corpus and a sequence of books, on one vocabulary.</summary>
internal sealed record TextCorpus(CharVocabulary Vocabulary, Tensor Pretraining, IReadOnlyList<TextBook> Books);

/// <summary>The text-model settings both language-model samples take from <see cref="TextModelOptions"/>.</summary>
internal sealed record TextSettings(string DataFolder, string[] Books, int PretrainSteps, TinyTransformerConfig Shape, int MaxChars);

/// <summary>
/// The options of the character transformer and its texts, shared by ContinualLearning and BayesianLora (next to
/// <see cref="CommonOptions"/>): --books, --pretrain-steps, --width, --layers, --context, --max-chars.
/// </summary>
internal sealed class TextModelOptions
{
    private readonly Option<string> _books;
    private readonly Option<int?> _pretrainSteps = CommonOptions.Sized("--pretrain-steps", "Base-model pre-training steps.", 300, 5);
    private readonly Option<int?> _width = CommonOptions.Sized("--width", "Transformer width.", 32, 16);
    private readonly Option<int?> _layers = CommonOptions.Sized("--layers", "Transformer blocks.", 2, 1);
    private readonly Option<int?> _context = CommonOptions.Sized("--context", "Characters per training window (and per scored statement).", 32, 16);
    private readonly Option<int?> _maxChars = CommonOptions.Sized("--max-chars", "Characters read per text.", 100_000, 600);

    /// <summary>Creates the options; <paramref name="booksDescription"/> says what the books are for.</summary>
    public TextModelOptions(string booksDescription) => _books = new Option<string>("--books")
    {
        Description = $"{booksDescription} (comma-separated names of NAME.txt files in --data).",
        DefaultValueFactory = _ => string.Join(',', TextLab.DefaultBooks),
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _books, _pretrainSteps, _width, _layers, _context, _maxChars }) command.Options.Add(option);
    }

    /// <summary>The settings, with the texts checked to exist before any work.</summary>
    /// <exception cref="UsageException">A text is missing.</exception>
    public TextSettings Read(ParseResult parse, CommonSettings common)
    {
        int Sized(Option<int?> o, int normal, int tiny) => CommonOptions.Sized(parse, o, normal, tiny, common.Tiny);
        var folder = common.Data ?? TextLab.DefaultDataFolder;
        var books = parse.GetValue(_books)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        TextLab.CheckTexts(folder, books);
        var width = Sized(_width, 32, 16);
        return new TextSettings(folder, books, Sized(_pretrainSteps, 300, 5),
            new TinyTransformerConfig(0, Sized(_context, 32, 16), width, Math.Max(1, width / 16), Sized(_layers, 2, 1)), Sized(_maxChars, 100_000, 600));
    }
}

/// <summary>What both language-model samples share: loading the texts, pre-training the base, held-out losses.</summary>
internal static class TextLab
{
    public const string PretrainingText = "GPL-2";
    public static readonly string[] DefaultBooks = { "Apache-2.0", "MPL-2.0", "Artistic", "CC0-1.0" };

    public static string DefaultDataFolder => Path.Combine(AppContext.BaseDirectory, "data", "licenses");

    /// <summary>Checks, before any work, that the pre-training text and every book are in <paramref name="folder"/>.</summary>
    /// <exception cref="UsageException">A text is missing, or no book was named.</exception>
    public static void CheckTexts(string folder, IReadOnlyList<string> books)
    {
        if (books.Count == 0) throw new UsageException("--books needs at least one text.");
        foreach (var name in books.Prepend(PretrainingText))
            if (!File.Exists(Path.Combine(folder, name + ".txt")))
                throw new UsageException($"--books: no text '{name}' ({name}.txt) in '{folder}' (--data sets the folder).");
    }

    /// <summary>Reads <c>NAME.txt</c> files; every book keeps its last <paramref name="testFraction"/> for testing.</summary>
    public static TextCorpus Load(string folder, IReadOnlyList<string> books, Device device, double testFraction = 0.15, int? maxCharacters = null)
    {
        string Read(string name)
        {
            var path = Path.Combine(folder, name + ".txt");
            if (!File.Exists(path)) throw new FileNotFoundException($"Text '{name}' not found at {path} (--data sets the folder).", path);
            var text = File.ReadAllText(path);
            return maxCharacters is int m && text.Length > m ? text[..m] : text;
        }
        var pre = Read(PretrainingText);
        var texts = books.Select(Read).ToArray();
        var vocabulary = new CharVocabulary(texts.Append(pre));
        return new TextCorpus(vocabulary, vocabulary.Encode(pre, device),
            books.Select((b, i) => TextEpisodes.Split(b, texts[i], vocabulary, testFraction, device)).ToArray());
    }

    /// <summary>Trains the base weights (adapters frozen at their identity start) on the pre-training text with AdamW.</summary>
    public static void Pretrain(TinyTransformer model, Tensor ids, int steps, int batchSize, int length, double lr, Generator generator, Action? onStep = null)
    {
        model.UseBaseOnly();
        var trainable = model.parameters().Where(p => p.requires_grad).ToArray();
        using var optimizer = optim.AdamW(trainable, lr: lr, weight_decay: 0.01);
        for (var step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var batch = TextEpisodes.RandomWindows(ids, batchSize, length, generator);
            var loss = -CharLanguageModel.TokenLogLikelihood(model, batch).mean();
            loss.backward();
            optimizer.step();
            onStep?.Invoke();
        }
        model.UseLoraOnly();
    }

    /// <summary>Mean negative log-likelihood per predicted character (nats) of <paramref name="ids"/> at the LoRA values <paramref name="lora"/>.</summary>
    public static double HeldOutLoss(TinyTransformer model, ParameterTree lora, Tensor ids, int length)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        ModuleBinding.Bind(model, lora);
        var windows = TextEpisodes.AllWindows(ids, length);
        return -CharLanguageModel.TokenLogLikelihood(model, windows).mean().item<float>();
    }
}
