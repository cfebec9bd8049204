using System.Collections;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Posteriors.Generators.Tests;

/// <summary>The incremental pipeline caches: unchanged or unrelated edits reuse every step; a prior edit regenerates.</summary>
public class CachingTests
{
    private const string Model = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class Regression
        {
            [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(3, 1);
            [Prior(Distribution.HalfNormal, 1), Positive] public Tensor NoiseScale = ones(1);

            [Likelihood]
            public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(Weight).squeeze(1), NoiseScale);
        }
        """;

    private static readonly string[] TrackedSteps = { ModelGenerator.Steps.Models, ModelGenerator.Steps.ValidModels };

    private static (GeneratorDriver Driver, GeneratorRunResult Result) Run(GeneratorDriver driver, Compilation compilation)
    {
        driver = driver.RunGenerators(compilation);
        return (driver, driver.GetRunResult().Results.Single());
    }

    [Test]
    public void RerunOnAnUnchangedCompilationCachesEveryStep()
    {
        var compilation = TestCompilation.Create(Model);
        var (driver, first) = Run(TestCompilation.Driver(), compilation);
        Assert.That(first.GeneratedSources, Has.Length.EqualTo(1));
        AssertNoSymbolsInPipeline(first);
        var (_, second) = Run(driver, compilation.Clone());
        foreach (var step in TrackedSteps)
        {
            Assert.That(second.TrackedSteps, Does.ContainKey(step));
            var reasons = second.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
            Assert.That(reasons, Is.Not.Empty);
            Assert.That(reasons, Is.All.EqualTo(IncrementalStepRunReason.Cached).Or.EqualTo(IncrementalStepRunReason.Unchanged), step);
        }
        Assert.That(second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).Select(o => o.Reason),
            Is.All.EqualTo(IncrementalStepRunReason.Cached));
    }

    [Test]
    public void EditingAnUnrelatedFileLeavesTheOutputCached()
    {
        var compilation = TestCompilation.Create(Model, "namespace Demo; public class Unrelated { public int X; }");
        var (driver, _) = Run(TestCompilation.Driver(), compilation);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.ElementAt(1),
            CSharpSyntaxTree.ParseText("namespace Demo; public class Unrelated { public int X; public int Y; }", TestCompilation.ParseOptions, path: "Model1.cs"));
        var (_, second) = Run(driver, edited);
        Assert.That(second.TrackedSteps[ModelGenerator.Steps.ValidModels].SelectMany(s => s.Outputs).Select(o => o.Reason),
            Is.All.EqualTo(IncrementalStepRunReason.Cached).Or.EqualTo(IncrementalStepRunReason.Unchanged));
        Assert.That(second.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).Select(o => o.Reason),
            Is.All.EqualTo(IncrementalStepRunReason.Cached));
    }

    [Test]
    public void ChangingAPriorScaleRegenerates()
    {
        var compilation = TestCompilation.Create(Model);
        var (driver, first) = Run(TestCompilation.Driver(), compilation);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.First(),
            CSharpSyntaxTree.ParseText(Model.Replace("Distribution.HalfNormal, 1)", "Distribution.HalfNormal, 2.5)"), TestCompilation.ParseOptions, path: "Model0.cs"));
        var (_, second) = Run(driver, edited);
        Assert.That(second.TrackedSteps[ModelGenerator.Steps.Models].SelectMany(s => s.Outputs).Select(o => o.Reason),
            Has.Some.EqualTo(IncrementalStepRunReason.Modified));
        Assert.That(second.GeneratedSources.Single().SourceText.ToString(), Does.Contain("HalfNormal, scale: 2.5d"));
        Assert.That(first.GeneratedSources.Single().SourceText.ToString(), Does.Contain("HalfNormal, scale: 1d"));
    }

    /// <summary>Fails if any tracked step output holds a symbol, syntax node or compilation (they defeat caching).</summary>
    private static void AssertNoSymbolsInPipeline(GeneratorRunResult result)
    {
        foreach (var name in TrackedSteps)
            foreach (var step in result.TrackedSteps[name])
                foreach (var (value, _) in step.Outputs)
                    Walk(value, name, 0);
    }

    private static void Walk(object? value, string step, int depth)
    {
        if (value is null || depth > 6) return;
        Assert.That(value, Is.Not.InstanceOf<ISymbol>().And.Not.InstanceOf<SyntaxNode>().And.Not.InstanceOf<Compilation>()
            .And.Not.InstanceOf<SemanticModel>().And.Not.InstanceOf<Location>(), $"step {step} holds a {value.GetType().Name}");
        var type = value.GetType();
        if (type.IsPrimitive || value is string || type.IsEnum) return;
        if (value is IEnumerable items)
        {
            foreach (var item in items) Walk(item, step, depth + 1);
            return;
        }
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0))
            Walk(p.GetValue(value), step, depth + 1);
    }
}
