using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// The prior's precision a Laplace approximation starts from: one scalar for every element, or a tree over the
/// selected parameters. Doubles and trees convert implicitly.
/// </summary>
public sealed class InitialPrecision
{
    private InitialPrecision(double scalar, ParameterTree? tree)
    {
        Scalar = scalar;
        Tree = tree;
    }

    /// <summary>The scalar precision (when <see cref="Tree"/> is null).</summary>
    public double Scalar { get; }

    /// <summary>Per-element precisions, or <c>null</c> for a scalar.</summary>
    public ParameterTree? Tree { get; }

    /// <summary>The same precision for every element.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or not finite.</exception>
    public static InitialPrecision Of(double precision) => new(Check.NonNegative(precision, "initPrecision"), null);

    /// <summary>Per-element precisions (every element finite and ≥ 0, checked at Init).</summary>
    public static InitialPrecision Of(ParameterTree precision) => new(double.NaN, precision ?? throw new ArgumentNullException(nameof(precision)));

    /// <summary>A scalar precision.</summary>
    public static implicit operator InitialPrecision(double precision) => Of(precision);

    /// <summary>A tree of precisions.</summary>
    public static implicit operator InitialPrecision(ParameterTree precision) => Of(precision);

    /// <summary>The precision as a tree shaped like <paramref name="like"/>, checked.</summary>
    internal ParameterTree Materialize(ParameterTree like)
    {
        if (Tree is null) return like.Map(t => full_like(t, Scalar).detach());
        like.EnsureSameStructure(Tree, "initPrecision");
        for (var i = 0; i < Tree.Count; i++)
        {
            var leaf = Tree.Leaves[i];
            if (!isfinite(leaf).all().item<bool>() || (leaf < 0).any().item<bool>())
                throw new ArgumentOutOfRangeException("initPrecision", $"Initial precision of parameter '{Tree.Names[i]}' has negative or non-finite entries.");
        }
        return Tree.ZipMap(like, (p, t) => p.detach().to(t.dtype).to(t.device).clone());
    }
}
