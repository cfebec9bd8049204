using System.ComponentModel;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>Helpers the generated model code calls; not meant to be called directly.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class ModelSupport
{
    /// <summary>Throws unless the data set size has been set.</summary>
    /// <exception cref="InvalidOperationException">N is not positive.</exception>
    public static long RequireDatasetSize(long n, string model) =>
        n > 0 ? n : throw new InvalidOperationException(
            $"{model}.DatasetSize is not set (it is {n}). Set it to N, the number of data points, before evaluating the " +
            "log posterior: the prior is divided by N (docs/ALGORITHMS.md §1).");

    /// <summary>Validates a data set size given to the setter.</summary>
    /// <exception cref="ArgumentOutOfRangeException">N ≤ 0.</exception>
    public static long ValidDatasetSize(long n, string model) =>
        n > 0 ? n : throw new ArgumentOutOfRangeException("DatasetSize", n, $"{model}.DatasetSize must be positive (the number of data points).");

    /// <summary>The value of a tensor member, or a clear error when it is null.</summary>
    /// <exception cref="InvalidOperationException">The member is null.</exception>
    public static T Member<T>(T? value, string model, string member) where T : class =>
        value ?? throw new InvalidOperationException($"{model}.{member} is null: give it an initial value.");

    /// <summary>The tree's leaf <paramref name="name"/>.</summary>
    public static Tensor Leaf(ParameterTree parameters, string name) => parameters[name];

    /// <summary>The leaves named <paramref name="prefix"/>.x, renamed x, in the tree's order.</summary>
    public static ParameterTree Subtree(ParameterTree parameters, string prefix)
    {
        var dotted = prefix + ".";
        var leaves = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, value) in parameters)
            if (name.StartsWith(dotted, StringComparison.Ordinal))
                leaves.Add(new(name.Substring(dotted.Length), value));
        if (leaves.Count == 0)
            throw new KeyNotFoundException($"The tree has no parameters of module '{prefix}'. It has: {string.Join(", ", parameters.Names)}.");
        return new ParameterTree(leaves);
    }

    /// <summary>A module's parameters named under <paramref name="prefix"/>.</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> Prefixed(string prefix, ParameterTree tree)
    {
        foreach (var (name, value) in tree) yield return new(prefix + "." + name, value);
    }

    /// <summary>The module's parameters (sharing its tensors) named under <paramref name="prefix"/>.</summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> ModuleParameters(string prefix, nn.Module module) =>
        Prefixed(prefix, ParameterTree.FromModule(module));

    /// <summary>Σ over a tree's leaves of a per-leaf log prior.</summary>
    public static Tensor SumOver(ParameterTree tree, Func<Tensor, Tensor> logPrior)
    {
        Tensor? total = null;
        foreach (var leaf in tree.Leaves)
        {
            var term = logPrior(leaf);
            total = total is null ? term : total + term;
        }
        return total ?? zeros(Array.Empty<long>());
    }

    /// <summary>log θ of a positive member's value, checked.</summary>
    /// <exception cref="InvalidOperationException">The value has entries that are not positive and finite.</exception>
    public static Tensor Unconstrain(Tensor value, string model, string member)
    {
        using var _ = no_grad();
        if (!(value > 0).logical_and(isfinite(value)).all().item<bool>())
            throw new InvalidOperationException(
                $"{model}.{member} is [Positive] but its value has entries that are not positive and finite.");
        return value.detach().log();
    }

    /// <summary>Checks that a likelihood returned one value per datum.</summary>
    /// <exception cref="InvalidOperationException">The result is not one-dimensional.</exception>
    public static Tensor PerDatum(Tensor logLikelihoods, string model, string method)
    {
        if (logLikelihoods.dim() != 1)
            throw new InvalidOperationException(
                $"{model}.{method} returned shape {ParameterTree.Shape(logLikelihoods)}; a [Likelihood] returns one value per " +
                "datum, shape [B]. Sum over event dimensions only; the generated log posterior takes the mean over the batch.");
        return logLikelihoods;
    }
}
