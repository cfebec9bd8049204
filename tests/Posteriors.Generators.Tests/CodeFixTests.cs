using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Posteriors.Generators.CodeFixes;

namespace Posteriors.Generators.Tests;

/// <summary>The PST0010 code fix: drop the batch reduction, or reduce over dimension 1 only; either way PST0010 is gone.</summary>
public class CodeFixTests
{
    private static string Model(string body) => TestCompilation.Usings + """
        [Model]
        public partial class M
        {
            [Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);

            [Likelihood]
            public Tensor LogLikelihood(Tensor x, Tensor y) => 
        """ + body + ";\n}\n";

    private static async Task<string> ApplyFix(string source, string equivalenceKey)
    {
        using var workspace = new AdhocWorkspace();
        var project = workspace.AddProject("Models", LanguageNames.CSharp)
            .WithParseOptions(TestCompilation.ParseOptions)
            .WithCompilationOptions(new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            .WithMetadataReferences(TestCompilation.Create().References);
        var document = project.AddDocument("M.cs", SourceText.From(source));
        var compilation = (await document.Project.GetCompilationAsync())!;
        var diagnostic = (await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ModelAnalyzer())).GetAnalyzerDiagnosticsAsync())
            .Single(d => d.Id == "PST0010");
        var actions = new List<CodeAction>();
        var context = new CodeFixContext(document, diagnostic, (a, _) => actions.Add(a), CancellationToken.None);
        await new BatchReductionCodeFix().RegisterCodeFixesAsync(context);
        var action = actions.Single(a => a.EquivalenceKey == equivalenceKey);
        var operations = await action.GetOperationsAsync(CancellationToken.None);
        var changed = operations.OfType<ApplyChangesOperation>().Single().ChangedSolution.GetDocument(document.Id)!;
        return (await changed.GetTextAsync()).ToString();
    }

    [TestCase("LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0).sum()", "PST0010.Remove", "LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0);")]
    [TestCase("LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0).mean()", "PST0010.Remove", "LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0);")]
    [TestCase("torch.sum(LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0))", "PST0010.Remove", "LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0);")]
    [TestCase("LogProb.Normal(y, x.matmul(W), 1.0).sum(0)", "PST0010.Dimension1", "LogProb.Normal(y, x.matmul(W), 1.0).sum(1);")]
    [TestCase("LogProb.Normal(y, x.matmul(W), 1.0).sum()", "PST0010.Dimension1", "LogProb.Normal(y, x.matmul(W), 1.0).sum(1);")]
    [TestCase("torch.mean(LogProb.Normal(y, x.matmul(W), 1.0))", "PST0010.Dimension1", "LogProb.Normal(y, x.matmul(W), 1.0).mean(new long[] { 1 });")]
    public async Task FixRewritesTheReductionAndSilencesTheWarning(string body, string fix, string expected)
    {
        var fixedSource = await ApplyFix(Model(body), fix);
        Assert.That(fixedSource, Does.Contain("=> " + expected));
        var (_, compileDiagnostics) = TestCompilation.Generate(fixedSource);
        Assert.That(compileDiagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()), Is.Empty, "the fixed code compiles");
        var after = await TestCompilation.Analyze(fixedSource);
        Assert.That(after.Where(d => d.Id == "PST0010"), Is.Empty);
    }
}
