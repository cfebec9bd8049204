using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Sgmcmc;

/// <summary>
/// How a momentum-based sampler (SGHMC, SGNHT, BAOA) starts its momenta: a tree shaped like θ, one value for every
/// element, or standard normal draws from the chain's seed (the default, as in the Python library).
/// Converts implicitly from a <see cref="double"/> and from a <see cref="ParameterTree"/>.
/// </summary>
public sealed class InitialMomenta
{
    private readonly ParameterTree? _tree;
    private readonly double? _value;

    private InitialMomenta(ParameterTree? tree, double? value)
    {
        _tree = tree;
        _value = value;
    }

    /// <summary>Standard normal draws, from the stream of (seed, step −1), so they never coincide with step noise.</summary>
    public static InitialMomenta Random { get; } = new(null, null);

    /// <summary>All zeros (docs/ALGORITHMS.md §7 and the T = 0 correspondence of §2.6 with momentum SGD).</summary>
    public static InitialMomenta Zero { get; } = new(null, 0.0);

    /// <summary>The same value for every element.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not finite.</exception>
    public static InitialMomenta Constant(double value) => new(null, Check.Finite(value, "momenta"));

    /// <summary>A tree shaped like the parameters (copied at <c>Init</c>).</summary>
    public static InitialMomenta From(ParameterTree momenta) => new(momenta ?? throw new ArgumentNullException(nameof(momenta)), null);

    /// <summary>The same value for every element.</summary>
    public static implicit operator InitialMomenta(double value) => Constant(value);

    /// <summary>A tree shaped like the parameters.</summary>
    public static implicit operator InitialMomenta(ParameterTree momenta) => From(momenta);

    /// <summary>
    /// The momenta for <paramref name="parameters"/>, as new tensors owned by the caller. Random draws come from stream
    /// <paramref name="stream"/> (chain k of an ensemble); a given tree is either shaped like the parameters or, for an
    /// ensemble, like the stacked parameters, whose row <paramref name="stream"/> is then taken.
    /// </summary>
    internal ParameterTree Create(ParameterTree parameters, long seed, Rng rng, int stream = 0)
    {
        using var scope = NewDisposeScope();
        if (_tree is not null)
        {
            var tree = _tree;
            if (!parameters.HasSameStructure(tree) && tree.Leaves.All(t => t.dim() > 0 && t.shape[0] > stream) &&
                parameters.HasSameStructure(tree.Map(t => t.select(0, stream))))
                tree = tree.Map(t => t.select(0, stream));
            parameters.EnsureSameStructure(tree, "momenta");
            return parameters.ZipMap(tree, (p, m) => m.detach().to(p.device).to_type(p.dtype).clone()).DetachFromDisposeScope();
        }
        if (_value is { } v) return parameters.Map(t => full_like(t, v)).DetachFromDisposeScope();
        var generator = rng.For(seed, -1, parameters.Device, stream);
        return parameters.Map(t => SgmcmcStep.Normal(t, generator)).DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public override string ToString() => _tree is not null ? "tree" : _value is { } v ? v.ToString(System.Globalization.CultureInfo.InvariantCulture) : "random";
}
