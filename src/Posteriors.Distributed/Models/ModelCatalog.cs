namespace Posteriors.Distributed.Models;

/// <summary>
/// The models a silo can build, by name. A silo host registers its own next to the built-in ones
/// (<see cref="SyntheticClassifier.Name"/>); every silo of a cluster must register the same factories.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, Func<ModelSpec, DistributedModel>> _factories = new(StringComparer.Ordinal);

    /// <summary>A catalog with the built-in models.</summary>
    public ModelCatalog()
    {
        Add(SyntheticClassifier.Name, spec => new SyntheticClassifier(spec));
        Add(ImageCnn.Name, spec => new ImageCnn(spec));
    }

    /// <summary>
    /// Held while seeding or drawing from torch's global generator (module construction): grains of one silo build models
    /// concurrently, and a model whose initialisation follows <c>manual_seed</c> must not see another's draws in between.
    /// </summary>
    public static object GlobalGeneratorLock { get; } = new();

    /// <summary>Registers (or replaces) the factory for <paramref name="name"/>.</summary>
    public ModelCatalog Add(string name, Func<ModelSpec, DistributedModel> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _factories[name] = factory ?? throw new ArgumentNullException(nameof(factory));
        return this;
    }

    /// <summary>The registered names.</summary>
    public IReadOnlyCollection<string> Names => _factories.Keys;

    /// <summary>Builds the model <paramref name="spec"/> describes.</summary>
    /// <exception cref="KeyNotFoundException">No factory has that name; the message lists the known ones.</exception>
    public DistributedModel Build(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return _factories.TryGetValue(spec.Name, out var factory)
            ? factory(spec)
            : throw new KeyNotFoundException(
                $"This silo has no model named '{spec.Name}'; it knows {string.Join(", ", _factories.Keys.Order().Select(n => $"'{n}'"))}. " +
                "Register the factory in every silo's ModelCatalog.");
    }
}
