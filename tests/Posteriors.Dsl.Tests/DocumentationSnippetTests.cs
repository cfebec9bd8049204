extern alias generator;

using System.Collections.Immutable;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ModelGenerator = generator::Posteriors.Generators.ModelGenerator;

namespace Posteriors.Dsl.Tests;

/// <summary>
/// Every <c>```csharp</c> block of README.md and docs/*.md compiles as pasted into a new console project (implicit usings
/// of the console template, nullable enabled, the model generator running) against the runtime and TorchSharp.
/// A block after a line <c>&lt;!-- runnable --&gt;</c> is also run, and each output line of the form
/// <c>name 0.301 (true 0.3)</c> must be within 0.05 of the truth. A block after <c>&lt;!-- sketch --&gt;</c> is an
/// outline with elisions (<c>...</c>) and is not compiled.
/// </summary>
[NonParallelizable]
public partial class DocumentationSnippetTests
{
    private const double Tolerance = 0.05;

    [GeneratedRegex(@"^(?<marker><!--\s*(?<kind>runnable|sketch)\s*-->\s*\n)?```csharp\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Block();

    [GeneratedRegex(@"^(?<name>.*?) (?<estimate>-?\d+(\.\d+)?) \(true (?<truth>-?\d+(\.\d+)?)\)\s*$", RegexOptions.Multiline)]
    private static partial Regex Estimate();

    public static IEnumerable<TestCaseData> Snippets()
    {
        var root = RepositoryRoot();
        var files = new[] { Path.Combine(root, "README.md") }.Concat(Directory.GetFiles(Path.Combine(root, "docs"), "*.md").OrderBy(f => f, StringComparer.Ordinal));
        foreach (var file in files)
        {
            var text = File.ReadAllText(file).Replace("\r\n", "\n");
            var index = 0;
            foreach (Match m in Block().Matches(text))
            {
                index++;
                var line = text[..m.Index].Count(c => c == '\n') + 1;
                var name = $"{Path.GetFileName(file)}_block{index}_line{line}";
                yield return new TestCaseData(m.Groups["kind"].Value, m.Groups["code"].Value).SetName("Snippet_" + name);
            }
        }
    }

    [TestCaseSource(nameof(Snippets))]
    public void SnippetCompilesAndRunnableSnippetsRecoverTheirTruth(string kind, string code)
    {
        if (kind == "sketch")
        {
            Assert.That(code, Does.Contain("..."), "a block marked <!-- sketch --> must show its elisions; otherwise remove the marker so it is compiled");
            return;
        }
        var assembly = Compile(code, out var errors);
        Assert.That(errors, Is.Empty, "the block does not compile as pasted:\n" + code);
        if (kind != "runnable") return;

        Assert.That(assembly!.EntryPoint, Is.Not.Null, "a runnable block has top-level statements");
        var output = Run(assembly, TimeSpan.FromMinutes(2));
        var estimates = Estimate().Matches(output);
        Assert.That(estimates, Is.Not.Empty, "a runnable block prints lines 'name value (true value)'; it printed:\n" + output);
        foreach (Match e in estimates)
        {
            var estimate = double.Parse(e.Groups["estimate"].Value, CultureInfo.InvariantCulture);
            var truth = double.Parse(e.Groups["truth"].Value, CultureInfo.InvariantCulture);
            Assert.That(estimate, Is.EqualTo(truth).Within(Tolerance), e.Value);
        }
    }

    /// <summary>The global usings of the console template (ImplicitUsings=enable).</summary>
    private const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    private static Assembly? Compile(string code, out List<string> errors)
    {
        var options = new CSharpParseOptions(LanguageVersion.Latest);
        var snippet = CSharpSyntaxTree.ParseText(code, options, path: "Program.cs");
        var program = snippet.GetRoot().DescendantNodes().OfType<GlobalStatementSyntax>().Any();
        var compilation = CSharpCompilation.Create("Snippet" + Guid.NewGuid().ToString("N"),
            new[] { snippet, CSharpSyntaxTree.ParseText(ImplicitUsings, options, path: "GlobalUsings.g.cs") },
            Posteriors.Testing.RuntimeReferences.All,
            new CSharpCompilationOptions(program ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: false));
        CSharpGeneratorDriver.Create(new[] { new ModelGenerator().AsSourceGenerator() }, parseOptions: options)
            .RunGeneratorsAndUpdateCompilation(compilation, out var generated, out var generatorDiagnostics);
        using var image = new MemoryStream();
        var result = generated.Emit(image);
        errors = generatorDiagnostics.Concat(result.Diagnostics).Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        return result.Success ? Assembly.Load(image.ToArray()) : null;
    }

    /// <summary>Runs the entry point with the console captured, on a thread bounded by <paramref name="limit"/>.</summary>
    private static string Run(Assembly assembly, TimeSpan limit)
    {
        var entry = assembly.EntryPoint!;
        var writer = new StringWriter(CultureInfo.InvariantCulture);
        var previous = Console.Out;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { entry.Invoke(null, entry.GetParameters().Length == 0 ? null : new object[] { Array.Empty<string>() }); }
            catch (TargetInvocationException e) { failure = e.InnerException; }
        }) { CurrentCulture = CultureInfo.InvariantCulture };
        Console.SetOut(writer);
        try
        {
            thread.Start();
            if (!thread.Join(limit)) Assert.Fail($"the snippet ran longer than {limit}");
        }
        finally
        {
            Console.SetOut(previous);
        }
        if (failure is not null) Assert.Fail("the snippet threw: " + failure + "\nOutput:\n" + writer);
        TestContext.Out.WriteLine(writer.ToString());
        return writer.ToString();
    }

    private static string RepositoryRoot([CallerFilePath] string file = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, "..", ".."));
}
