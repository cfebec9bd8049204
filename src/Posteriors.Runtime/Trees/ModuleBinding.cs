using static TorchSharp.torch;

namespace Posteriors.Trees;

/// <summary>
/// Evaluates TorchSharp modules at parameter values held elsewhere (a sampler's state, a VI draw, an ensemble
/// member) without copying: each module parameter is pointed at the storage of the given tensor.
/// </summary>
public static class ModuleBinding
{
    /// <summary>
    /// Points every parameter of <paramref name="module"/> named in <paramref name="values"/> at that tensor's storage
    /// (no copy; parameters not named keep their values) and returns the module's own parameters as a tree with the
    /// names and order of <paramref name="values"/>. A log posterior that evaluates through the module returns that
    /// tree as <see cref="LogDensityResult.Wrt"/>, so gradients reach the algorithm.
    /// </summary>
    /// <exception cref="ArgumentException">A name is not a parameter of the module, or a shape or dtype differs.</exception>
    public static ParameterTree Bind(nn.Module module, ParameterTree values)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(values);
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var bound = new List<KeyValuePair<string, Tensor>>(values.Count);
        using (no_grad())
        {
            foreach (var (name, value) in values)
            {
                if (!parameters.TryGetValue(name, out var parameter))
                    throw new ArgumentException(
                        $"'{name}' is not a parameter of the module; it has: {string.Join(", ", parameters.Keys)}.", nameof(values));
                if (!parameter.shape.SequenceEqual(value.shape))
                    throw new ArgumentException(
                        $"Parameter '{name}' has shape {ParameterTree.Shape(parameter)} in the module but {ParameterTree.Shape(value)} in the values.", nameof(values));
                if (parameter.dtype != value.dtype || parameter.device_type != value.device_type || parameter.device_index != value.device_index)
                    throw new ArgumentException(
                        $"Parameter '{name}' is {parameter.dtype} on {parameter.device} in the module but {value.dtype} on {value.device} in the values.", nameof(values));
                parameter.set_(value.detach());
                bound.Add(new(name, parameter));
            }
        }
        return new ParameterTree(bound);
    }
}
