using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace Posteriors.Testing;

/// <summary>
/// Metadata references for compiling user code in a test: the framework's System assemblies, the Posteriors runtime and
/// TorchSharp's managed assembly (Tensor and friends resolve without libtorch).
/// </summary>
internal static class RuntimeReferences
{
    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .ToList();
        paths.Add(typeof(Posteriors.Modeling.ModelAttribute).Assembly.Location);
        paths.Add(typeof(TorchSharp.torch).Assembly.Location);
        return paths.Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
    });

    /// <summary>The references, built once per test assembly.</summary>
    public static ImmutableArray<MetadataReference> All => References.Value;
}
