using TorchSharp.Utils;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models.Transformers;

/// <summary>
/// A linear layer with a low-rank adapter (LoRA, Hu et al. 2021): y = x Wᵀ + b + (α / r) · x Aᵀ Bᵀ.
/// A starts small and random, B at zero, so a fresh adapter leaves the layer's output unchanged.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "base")]
    private readonly Linear _base;

    [ComponentName(Name = "lora_A")]
    private readonly Parameter _loraA;

    [ComponentName(Name = "lora_B")]
    private readonly Parameter _loraB;

    /// <summary>Creates the layer.</summary>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="rank">Adapter rank r (positive, at most min(in, out)).</param>
    /// <param name="alpha">Adapter scale α; the update is multiplied by α / r.</param>
    /// <param name="bias">Whether the base layer has a bias.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size, the rank or α is invalid; the message names it.</exception>
    public LoraLinear(long inFeatures, long outFeatures, int rank, double alpha, bool bias = true) : base(nameof(LoraLinear))
    {
        if (inFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "Input width must be positive.");
        if (outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "Output width must be positive.");
        if (rank <= 0 || rank > Math.Min(inFeatures, outFeatures))
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"LoRA rank must be in 1..{Math.Min(inFeatures, outFeatures)}.");
        Check.Positive(alpha, nameof(alpha));
        Rank = rank;
        Alpha = alpha;
        _base = nn.Linear(inFeatures, outFeatures, hasBias: bias);
        // Kaiming-uniform-like scale for A (as in the reference LoRA); B = 0 makes the adapter start as the identity update.
        var bound = 1.0 / Math.Sqrt(inFeatures);
        _loraA = new Parameter(empty(rank, inFeatures).uniform_(-bound, bound));
        _loraB = new Parameter(zeros(outFeatures, rank));
        RegisterComponents();
    }

    /// <summary>The adapter rank r.</summary>
    public int Rank { get; }

    /// <summary>The adapter scale α (the update is scaled by α / r).</summary>
    public double Alpha { get; }

    /// <summary>The frozen (or pre-trainable) base layer.</summary>
    public Linear Base => _base;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var y = _base.call(input) + nn.functional.linear(nn.functional.linear(input, _loraA), _loraB) * (Alpha / Rank);
        return y.MoveToOuterDisposeScope();
    }
}
