using TorchSharp.Utils;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models.Transformers;

/// <summary>
/// Multi-head causal self-attention whose query, key, value and output projections carry LoRA adapters.
/// Position t attends to positions ≤ t only, so a later token never changes an earlier output.
/// </summary>
public sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "q")] private readonly LoraLinear _q;
    [ComponentName(Name = "k")] private readonly LoraLinear _k;
    [ComponentName(Name = "v")] private readonly LoraLinear _v;
    [ComponentName(Name = "o")] private readonly LoraLinear _o;
    private readonly long _heads;

    /// <summary>Creates the attention layer.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="heads"/> does not divide <paramref name="width"/>.</exception>
    public CausalSelfAttention(long width, long heads, int loraRank, double loraAlpha) : base(nameof(CausalSelfAttention))
    {
        if (heads <= 0 || width % heads != 0)
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"The number of heads must be positive and divide the width {width}.");
        _heads = heads;
        _q = new LoraLinear(width, width, loraRank, loraAlpha);
        _k = new LoraLinear(width, width, loraRank, loraAlpha);
        _v = new LoraLinear(width, width, loraRank, loraAlpha);
        _o = new LoraLinear(width, width, loraRank, loraAlpha);
        RegisterComponents();
    }

    /// <summary>Attends over <paramref name="x"/> of shape [batch, time, width].</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], w = x.shape[2], hd = w / _heads;
        Tensor Split(Tensor z) => z.view(b, t, _heads, hd).transpose(1, 2);   // [b, h, t, hd]
        var q = Split(_q.call(x));
        var k = Split(_k.call(x));
        var v = Split(_v.call(x));
        var scores = Checked.MatMul(q, k.transpose(-2, -1)) / Math.Sqrt(hd);
        var future = ones(t, t, dtype: ScalarType.Bool, device: x.device).triu(1);
        var attention = scores.masked_fill(future, double.NegativeInfinity).softmax(-1);
        var y = Checked.MatMul(attention, v).transpose(1, 2).contiguous().view(b, t, w);
        return _o.call(y).MoveToOuterDisposeScope();
    }
}
