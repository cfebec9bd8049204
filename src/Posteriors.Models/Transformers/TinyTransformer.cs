using TorchSharp.Utils;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models.Transformers;

/// <summary>Sizes of a <see cref="TinyTransformer"/>.</summary>
/// <param name="VocabularySize">Number of distinct tokens (characters).</param>
/// <param name="ContextLength">Longest sequence the position embedding covers.</param>
/// <param name="Width">Embedding width.</param>
/// <param name="Heads">Attention heads (must divide the width).</param>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="LoraRank">LoRA rank r of the attention adapters.</param>
/// <param name="LoraAlpha">LoRA scale α (updates are scaled by α / r).</param>
public sealed record TinyTransformerConfig(
    int VocabularySize, int ContextLength = 64, int Width = 64, int Heads = 4, int Layers = 2, int LoraRank = 8, double LoraAlpha = 32)
{
    /// <summary>Throws when a size is not positive or the heads do not divide the width.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the member and its value.</exception>
    public void Validate()
    {
        if (VocabularySize <= 0) throw new ArgumentOutOfRangeException(nameof(VocabularySize), VocabularySize, "Must be positive.");
        if (ContextLength <= 0) throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "Must be positive.");
        if (Width <= 0) throw new ArgumentOutOfRangeException(nameof(Width), Width, "Must be positive.");
        if (Heads <= 0 || Width % Heads != 0) throw new ArgumentOutOfRangeException(nameof(Heads), Heads, $"Must be positive and divide Width = {Width}.");
        if (Layers <= 0) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "Must be positive.");
        if (LoraRank <= 0 || LoraRank > Width) throw new ArgumentOutOfRangeException(nameof(LoraRank), LoraRank, $"Must be in 1..{Width}.");
        Check.Positive(LoraAlpha, nameof(LoraAlpha));
    }
}

/// <summary>One pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).</summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "ln1")] private readonly LayerNorm _ln1;
    [ComponentName(Name = "attn")] private readonly CausalSelfAttention _attention;
    [ComponentName(Name = "ln2")] private readonly LayerNorm _ln2;
    [ComponentName(Name = "fc")] private readonly Linear _fc;
    [ComponentName(Name = "proj")] private readonly Linear _proj;

    /// <summary>Creates a block of the given width.</summary>
    public TransformerBlock(long width, long heads, int loraRank, double loraAlpha) : base(nameof(TransformerBlock))
    {
        _ln1 = nn.LayerNorm(width);
        _attention = new CausalSelfAttention(width, heads, loraRank, loraAlpha);
        _ln2 = nn.LayerNorm(width);
        _fc = nn.Linear(width, 4 * width);
        _proj = nn.Linear(4 * width, width);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + _attention.call(_ln1.call(x));
        x = x + _proj.call(nn.functional.gelu(_fc.call(_ln2.call(x))));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A tiny character-level decoder-only transformer (token and position embeddings, pre-norm blocks with causal
/// self-attention and an MLP, a final layer norm and an output head) with LoRA adapters on every attention
/// projection. <see cref="UseLoraOnly"/> freezes the base weights, after which
/// <see cref="ParameterTree.FromModule"/>(model, trainableOnly: true) is exactly the LoRA subset.
/// </summary>
/// <remarks>Input: token ids [batch, time] (int64, time ≤ context length). Output: logits [batch, time, vocabulary].</remarks>
public sealed class TinyTransformer : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "tok")] private readonly Embedding _tokens;
    [ComponentName(Name = "pos")] private readonly Embedding _positions;
    [ComponentName(Name = "blocks")] private readonly ModuleList<TransformerBlock> _blocks;
    [ComponentName(Name = "ln_f")] private readonly LayerNorm _lnFinal;
    [ComponentName(Name = "head")] private readonly Linear _head;

    /// <summary>Creates the model with freshly initialised weights (draws from TorchSharp's global generator).</summary>
    public TinyTransformer(TinyTransformerConfig config) : base(nameof(TinyTransformer))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _tokens = nn.Embedding(config.VocabularySize, config.Width);
        _positions = nn.Embedding(config.ContextLength, config.Width);
        _blocks = nn.ModuleList(Enumerable.Range(0, config.Layers)
            .Select(_ => new TransformerBlock(config.Width, config.Heads, config.LoraRank, config.LoraAlpha)).ToArray());
        _lnFinal = nn.LayerNorm(config.Width);
        _head = nn.Linear(config.Width, config.VocabularySize);
        RegisterComponents();
    }

    /// <summary>The sizes the model was built with.</summary>
    public TinyTransformerConfig Config { get; }

    /// <summary>Whether a parameter name belongs to a LoRA adapter.</summary>
    public static bool IsLoraParameter(string name) =>
        name.EndsWith(".lora_A", StringComparison.Ordinal) || name.EndsWith(".lora_B", StringComparison.Ordinal);

    /// <summary>Makes only the LoRA adapters trainable (<c>requires_grad</c>); the base weights are frozen.</summary>
    public TinyTransformer UseLoraOnly() => SetTrainable(name => IsLoraParameter(name));

    /// <summary>Makes only the base weights trainable (pre-training); the adapters are frozen.</summary>
    public TinyTransformer UseBaseOnly() => SetTrainable(name => !IsLoraParameter(name));

    private TinyTransformer SetTrainable(Func<string, bool> trainable)
    {
        foreach (var (name, p) in named_parameters()) p.requires_grad = trainable(name);
        return this;
    }

    /// <summary>The trainable parameters as a tree sharing the module's tensors (after <see cref="UseLoraOnly"/>: the LoRA subset).</summary>
    public ParameterTree TrainableParameters() => ParameterTree.FromModule(this, trainableOnly: true);

    /// <inheritdoc />
    public override Tensor forward(Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.dim() != 2)
            throw new ArgumentException($"Expected token ids of shape [batch, time]; got {"[" + string.Join(", ", tokens.shape) + "]"}.", nameof(tokens));
        var t = tokens.shape[1];
        if (t > Config.ContextLength)
            throw new ArgumentException($"Sequence length {t} exceeds the context length {Config.ContextLength}.", nameof(tokens));
        using var scope = NewDisposeScope();
        var x = _tokens.call(tokens) + _positions.call(arange(t, dtype: ScalarType.Int64, device: tokens.device));
        foreach (var block in _blocks) x = block.call(x);
        return _head.call(_lnFinal.call(x)).MoveToOuterDisposeScope();
    }
}
