using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>
/// The CNN-LSTM text classifier of the cold-posterior literature (Wenzel et al. 2020, IMDB): token embedding(128) →
/// conv1d(64, kernel 5) → ReLU → max-pool 4 → LSTM(70) → dense(classes) on the last hidden state.
/// At a 20,000-word vocabulary it has 2,639,246 parameters for two classes (the embedding holds 2.56M of them).
/// </summary>
public sealed class CnnLstm : nn.Module<Tensor, Tensor>
{
    /// <summary>The prior the literature used: N(0, 1/40) on every weight, i.e. σ = 1/√40.</summary>
    public static readonly double DefaultPriorSd = 1 / Math.Sqrt(40);

    private readonly Embedding embedding;
    private readonly Conv1d conv;
    private readonly LSTM lstm;
    private readonly Linear dense;

    /// <summary>Creates the network.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public CnnLstm(int vocabulary = 20_000, int classes = 2, int embedding = 128, int filters = 64, int kernel = 5, int pool = 4, int hidden = 70)
        : base(nameof(CnnLstm))
    {
        foreach (var (name, v) in new[] { (nameof(vocabulary), vocabulary), (nameof(embedding), embedding), (nameof(filters), filters),
                     (nameof(kernel), kernel), (nameof(pool), pool), (nameof(hidden), hidden) })
            if (v < 1) throw new ArgumentOutOfRangeException(name, v, "Must be positive.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        Pool = pool;
        this.embedding = nn.Embedding(vocabulary, embedding);
        conv = nn.Conv1d(embedding, filters, kernel);
        lstm = nn.LSTM(filters, hidden, batchFirst: true);
        dense = nn.Linear(hidden, classes);
        RegisterComponents();
    }

    /// <summary>The max-pooling width.</summary>
    public int Pool { get; }

    /// <summary>Logits [B, classes] for token ids [B, L] (int64; L ≥ kernel − 1 + pool).</summary>
    public override Tensor forward(Tensor tokens)
    {
        // No dispose scope here: hooks (per-sample gradients, GGN) keep the intermediate outputs; callers own the scope.
        var x = embedding.call(tokens).transpose(1, 2);                       // [B, E, L]
        x = nn.functional.max_pool1d(nn.functional.relu(conv.call(x)), Pool); // [B, F, L']
        var (output, _, _) = lstm.call(x.transpose(1, 2));                    // [B, L', H]
        return dense.call(output.select(1, -1));
    }
}
