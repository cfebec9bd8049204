using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>
/// Names of parameter subsets for curvature restricted to part of a network (the rest stays fixed at its value):
/// the last layer, the trainable (requires-grad) part such as LoRA adapters, or a name prefix.
/// </summary>
public static class Subsets
{
    /// <summary>
    /// The leaves of the last module in the tree's order: those sharing the last leaf's name prefix
    /// (<c>fc3.weight</c>, <c>fc3.bias</c> for a tree ending in <c>fc3.bias</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The tree is empty.</exception>
    public static IReadOnlyList<string> LastLayer(ParameterTree parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count == 0) throw new ArgumentException("The tree has no parameters.", nameof(parameters));
        var last = parameters.Names[^1];
        var dot = last.LastIndexOf('.');
        if (dot < 0) return new[] { last };
        var prefix = last[..(dot + 1)];
        return parameters.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.IndexOf('.', prefix.Length) < 0).ToArray();
    }

    /// <summary>The names of the module's parameters that have <c>requires_grad</c> set (e.g. LoRA adapters on a frozen backbone).</summary>
    public static IReadOnlyList<string> Trainable(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToArray();
    }

    /// <summary>The names starting with <paramref name="prefix"/> (e.g. <c>"head."</c>).</summary>
    /// <exception cref="ArgumentException">No name starts with the prefix.</exception>
    public static IReadOnlyList<string> WithPrefix(ParameterTree parameters, string prefix)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(prefix);
        var names = parameters.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
        return names.Length > 0
            ? names
            : throw new ArgumentException($"No parameter name starts with '{prefix}'. The tree has: {string.Join(", ", parameters.Names)}.", nameof(prefix));
    }
}
