using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Posteriors.Generators.Tests;

/// <summary>Compilations of model sources against the runtime and TorchSharp's managed assembly, and the generator/analyzer run on them.</summary>
internal static class TestCompilation
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public const string Usings = "using System;\nusing Posteriors.Modeling;\nusing TorchSharp;\nusing TorchSharp.Modules;\nusing static TorchSharp.torch;\n";

    public static CSharpCompilation Create(params string[] sources) =>
        CSharpCompilation.Create("Models",
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Model{i}.cs")),
            Posteriors.Testing.RuntimeReferences.All,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver(bool track = true) =>
        CSharpGeneratorDriver.Create(new[] { new ModelGenerator().AsSourceGenerator() }, parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: track));

    /// <summary>Runs the generator; returns the generated sources by hint name and the diagnostics of the output compilation.</summary>
    public static (Dictionary<string, string> Sources, ImmutableArray<Diagnostic> Diagnostics) Generate(params string[] sources)
    {
        var compilation = Create(sources);
        var result = Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics).GetRunResult();
        var generated = result.Results.SelectMany(r => r.GeneratedSources).ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        return (generated, generatorDiagnostics.AddRange(output.GetDiagnostics()));
    }

    /// <summary>The analyzer's diagnostics on the sources (after generation, as in a real build).</summary>
    public static async Task<ImmutableArray<Diagnostic>> Analyze(params string[] sources)
    {
        var compilation = Create(sources);
        Driver(track: false).RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        var diagnostics = await output.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ModelAnalyzer())).GetAnalyzerDiagnosticsAsync();
        return diagnostics;
    }
}
