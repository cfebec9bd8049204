using Microsoft.CodeAnalysis;

namespace Posteriors.Generators.Tests;

/// <summary>Every diagnostic: reported on a model that has the problem (at the right place), absent on its corrected twin.</summary>
public class AnalyzerTests
{
    private const string Likelihood = "[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0);";

    private static string Model(string members, string header = "[Model] public partial class M") =>
        TestCompilation.Usings + header + "\n{\n" + members + "\n}\n";

    private static string Valid(string extra = "") => Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n" + extra + "\n" + Likelihood);

    public static IEnumerable<TestCaseData> Cases()
    {
        TestCaseData Case(string id, string bad, string good, string at) => new TestCaseData(id, bad, good, at).SetName($"{id}_{at.Replace(' ', '_').Replace("\"", "")}");

        yield return Case("PST0001", Valid().Replace("public partial class M", "public class M"), Valid(), "M");
        yield return Case("PST0002",
            TestCompilation.Usings + "public partial class Outer {\n" + Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n" + Likelihood).Replace(TestCompilation.Usings, "") + "}",
            Valid(), "M");
        yield return Case("PST0002", Valid().Replace("partial class M", "partial class M<T>"), Valid(), "M");
        yield return Case("PST0003", Valid("[Prior(Distribution.Normal, 0, 1)] public double Scale = 1;"), Valid("public double Scale = 1;"), "Prior(Distribution.Normal, 0, 1)");
        yield return Case("PST0003", Valid("[Prior(Distribution.Normal, 0, 1)] public static Tensor S = zeros(1);"), Valid("public static Tensor S = zeros(1);"), "Prior(Distribution.Normal, 0, 1)");
        yield return Case("PST0003", Valid("[Prior(Distribution.Normal, 0, 1), Positive] public Linear L = nn.Linear(2, 2);"), Valid("[Prior(Distribution.Normal, 0, 1)] public Linear L = nn.Linear(2, 2);"), "Positive");
        yield return Case("PST0004", Valid("[Prior(Distribution.Normal, 0, 0)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Normal, 0, 0.5)] public Tensor V = zeros(1);"), "Prior(Distribution.Normal, 0, 0)");
        yield return Case("PST0004", Valid("[Prior(Distribution.StudentT, -1, 0, 1)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.StudentT, 1, 0, 1)] public Tensor V = zeros(1);"), "Prior(Distribution.StudentT, -1, 0, 1)");
        yield return Case("PST0004", Valid("[Prior(Distribution.Laplace, double.NaN, 1)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Laplace, 0, 1)] public Tensor V = zeros(1);"), "Prior(Distribution.Laplace, double.NaN, 1)");
        yield return Case("PST0004", Valid("[Prior(Distribution.Cauchy, 0, double.PositiveInfinity)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Cauchy, 0, 1e300)] public Tensor V = zeros(1);"), "Prior(Distribution.Cauchy, 0, double.PositiveInfinity)");
        yield return Case("PST0004", Valid("[Prior(Distribution.Normal, 1)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Normal, 0, 1)] public Tensor V = zeros(1);"), "Prior(Distribution.Normal, 1)");
        yield return Case("PST0005", Valid("public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Flat)] public Tensor V = zeros(1);"), "V");
        yield return Case("PST0005", Valid("public Linear L = nn.Linear(2, 2);"), Valid("[Fixed] public Linear L = nn.Linear(2, 2);"), "L");
        yield return Case("PST0006", Valid("[Prior(Distribution.Normal, 0, 1)][Prior(Distribution.Laplace, 0, 1)] public Tensor V = zeros(1);"), Valid("[Prior(Distribution.Laplace, 0, 1)] public Tensor V = zeros(1);"), "Prior(Distribution.Laplace, 0, 1)");
        yield return Case("PST0007", Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);"), Valid(), "M");
        yield return Case("PST0008", Valid("[Forward(OutputDistribution.Categorical)] public Tensor F(Tensor x) => x.matmul(W);"), Valid("public Tensor F(Tensor x) => x.matmul(W);"), "Likelihood");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public double LogLikelihood(Tensor x, Tensor y) => 0;"),
            Valid(), "LogLikelihood");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public static Tensor LogLikelihood(Tensor x, Tensor y) => x;"),
            Valid(), "LogLikelihood");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood() => W;"),
            Valid(), "LogLikelihood");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Forward(OutputDistribution.Normal)] public Tensor F(Tensor x) => x.matmul(W);"),
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Forward(OutputDistribution.Normal, 0.1)] public Tensor F(Tensor x) => x.matmul(W);"), "F");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Forward(OutputDistribution.Categorical)] public Tensor F(Tensor x, Tensor z) => x.matmul(W);"),
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Forward(OutputDistribution.Categorical)] public Tensor F(Tensor x) => x.matmul(W);"), "F");
        yield return Case("PST0010",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0).sum();"),
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(W), 1.0).sum(1);"), "sum()");
        yield return Case("PST0010",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) { var ll = LogProb.Normal(y, x.matmul(W).squeeze(1), 1.0); return torch.mean(ll); }"),
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) { var ll = LogProb.Normal(y, x.matmul(W), 1.0); return torch.mean(ll, new long[] { 1 }); }"), "mean(ll)");
        foreach (var (reduction, at) in new[]
                 {
                     ("sum(0)", "sum(0)"), ("sum(0, keepdim: true).squeeze(1)", "sum(0, keepdim: true)"), ("sum(dim: 0)", "sum(dim: 0)"),
                     ("mean(new long[] { 0 })", "mean(new long[] { 0 })"),
                 })
            yield return Case("PST0010",
                Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y.unsqueeze(1), x.matmul(W), 1.0)." + reduction + ";"),
                Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y.unsqueeze(1), x.matmul(W), 1.0).sum(1);"), at);
        yield return Case("PST0004", Valid("[Prior(Distribution.Normal, 0, nameof(Missing))] public Tensor V = zeros(1); public double Missing = 1;"),
            Valid("[Prior(Distribution.Normal, 0, nameof(Missing))] public Tensor V = zeros(1); [Hyper] public double Missing = 1;"), "Prior(Distribution.Normal, 0, nameof(Missing))");
        yield return Case("PST0004", Valid("[Prior(Distribution.Normal, 0, nameof(W))] public Tensor V = zeros(1);"),
            Valid("[Prior(Distribution.Normal, nameof(W), 1)] public Tensor V = zeros(1);"), "Prior(Distribution.Normal, 0, nameof(W))");
        yield return Case("PST0004", Valid("[Prior(Distribution.StudentT, 3, 1, 1), Positive] public Tensor V = ones(1);"),
            Valid("[Prior(Distribution.StudentT, 3, 0, 1), Positive] public Tensor V = ones(1);"), "Prior(Distribution.StudentT, 3, 1, 1)");
        yield return Case("PST0003", Valid("[Hyper] public int Count = 1;"), Valid("[Hyper] public double Count = 1;"), "Hyper");
        yield return Case("PST0013",
            Valid("[Prior(Distribution.Normal, nameof(B), 1)] public Tensor A = zeros(1);\n[Prior(Distribution.Normal, nameof(A), 1)] public Tensor B = zeros(1);"),
            Valid("[Prior(Distribution.Normal, nameof(B), 1)] public Tensor A = zeros(1);\n[Prior(Distribution.Normal, 0, 1)] public Tensor B = zeros(1);"),
            "Prior(Distribution.Normal, nameof(B), 1)");
        yield return Case("PST0009",
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Prior(Distribution.Normal, 0, 1)] public Tensor S = ones(1);\n[Forward(OutputDistribution.Normal, nameof(S))] public Tensor F(Tensor x) => x.matmul(W);"),
            Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n[Prior(Distribution.HalfNormal, 1), Positive] public Tensor S = ones(1);\n[Forward(OutputDistribution.Normal, nameof(S))] public Tensor F(Tensor x) => x.matmul(W);"), "F");
        yield return Case("PST0014", Valid("[Prior(Distribution.Dirichlet, 1)] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.Dirichlet, 1), Simplex] public Tensor V = ones(3);"), "Prior(Distribution.Dirichlet, 1)");
        yield return Case("PST0014", Valid("[Prior(Distribution.Beta, 2, 2), Bounded(0, 2)] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.Beta, 2, 2), UnitInterval] public Tensor V = ones(3);"), "Prior(Distribution.Beta, 2, 2)");
        yield return Case("PST0014", Valid("[Prior(Distribution.Uniform, 0, 2), Bounded(0, 3)] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.Uniform, 0, 3), Bounded(0, 3)] public Tensor V = ones(3);"), "Prior(Distribution.Uniform, 0, 2)");
        yield return Case("PST0014", Valid("[Prior(Distribution.Normal, 0, 1), Simplex] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.Normal, 0, 1), Ordered] public Tensor V = ones(3);"), "Prior(Distribution.Normal, 0, 1)");
        yield return Case("PST0014", Valid("[Prior(Distribution.LkjCholesky, 2), Positive] public Tensor V = eye(3);"),
            Valid("[Prior(Distribution.LkjCholesky, 2), CholeskyCorrelation] public Tensor V = eye(3);"), "Prior(Distribution.LkjCholesky, 2)");
        yield return Case("PST0014", Valid("[Prior(Distribution.HalfNormal, 1), Positive, Ordered] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.HalfNormal, 1), Positive] public Tensor V = ones(3);"), "Ordered");
        yield return Case("PST0004", Valid("[Prior(Distribution.Flat), Bounded(2, 1)] public Tensor V = ones(3);"),
            Valid("[Prior(Distribution.Flat), Bounded(1, 2)] public Tensor V = ones(3);"), "Bounded(2, 1)");
        yield return Case("PST0011", Valid("[Prior(Distribution.HalfNormal, 1)] public Tensor S = ones(1);"), Valid("[Prior(Distribution.HalfNormal, 1), Positive] public Tensor S = ones(1);"), "Prior(Distribution.HalfNormal, 1)");
        yield return Case("PST0012", Valid("[Prior(Distribution.Normal, 0, 1)] public readonly Tensor V = zeros(1);"), Valid("[Prior(Distribution.Normal, 0, 1)] public Tensor V = zeros(1);"), "V");
        yield return Case("PST0012", Valid("[Prior(Distribution.Normal, 0, 1)] public Tensor V { get; } = zeros(1);"), Valid("[Prior(Distribution.Normal, 0, 1)] public Tensor V { get; set; } = zeros(1);"), "V");
    }

    [TestCaseSource(nameof(Cases))]
    public async Task DiagnosticIsReportedOnlyWhenTheProblemIsThere(string id, string bad, string good, string at)
    {
        var reported = (await TestCompilation.Analyze(bad)).Where(d => d.Id == id).ToList();
        Assert.That(reported, Is.Not.Empty, $"{id} expected on:\n{bad}");
        var location = reported[0].Location;
        var text = location.SourceTree!.GetText().ToString(location.SourceSpan);
        Assert.That(text, Is.EqualTo(at), "location");
        Assert.That(reported[0].GetMessage(), Is.Not.Empty);

        var clean = await TestCompilation.Analyze(good);
        Assert.That(clean.Where(d => d.Id.StartsWith("PST", StringComparison.Ordinal)).Select(d => d.ToString()), Is.Empty, $"no diagnostic expected on:\n{good}");
    }

    [Test]
    public void MessagesNameTheMemberAndTheValue()
    {
        var diagnostics = TestCompilation.Analyze(Valid("[Prior(Distribution.Normal, 0, -2)] public Tensor Noise = zeros(1);")).Result;
        var message = diagnostics.Single(d => d.Id == "PST0004").GetMessage();
        Assert.That(message, Does.Contain("Noise").And.Contain("scale").And.Contain("-2"));
    }

    [Test]
    public void CycleMessageNamesTheCycle()
    {
        var diagnostics = TestCompilation.Analyze(Valid(
            "[Prior(Distribution.Normal, nameof(B), 1)] public Tensor A = zeros(1);\n" +
            "[Prior(Distribution.HalfNormal, nameof(C)), Positive] public Tensor B = ones(1);\n" +
            "[Prior(Distribution.HalfNormal, nameof(B)), Positive] public Tensor C = ones(1);")).Result;
        Assert.That(diagnostics.Single(d => d.Id == "PST0013").GetMessage(), Does.Contain("B → C → B"));
    }

    [TestCase("sum(0)", "ScalarType")]
    [TestCase("sum(0, keepdim: true).squeeze(1)", "keepdim")]
    [TestCase("mean(new long[] { 0 })", "dimension 0")]
    [TestCase("mean()", "every dimension")]
    public void BatchReductionMessageExplainsAndItsSuggestionCompiles(string reduction, string explains)
    {
        string Source(string r) => Model("[Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(3, 1);\n" +
                                         "[Likelihood] public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y.unsqueeze(1), x.matmul(W), 1.0)." + r + ";");
        var message = TestCompilation.Analyze(Source(reduction)).Result.Single(d => d.Id == "PST0010").GetMessage();
        Assert.That(message, Does.Contain(explains));
        var suggestion = System.Text.RegularExpressions.Regex.Match(message, @"\(e\.g\. '([^']+)'\)").Groups[1].Value;
        Assert.That(suggestion, Does.StartWith(reduction.Substring(0, reduction.IndexOf('('))));
        var (_, diagnostics) = TestCompilation.Generate(Source(suggestion));
        Assert.That(diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()), Is.Empty, suggestion);
        Assert.That(TestCompilation.Analyze(Source(suggestion)).Result.Where(d => d.Id == "PST0010"), Is.Empty);
    }

    [Test]
    public void EveryDescriptorIsTrackedInTheReleaseFiles() => AssertTracked();

    private static void AssertTracked([System.Runtime.CompilerServices.CallerFilePath] string file = "")
    {
        var root = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, "../../src/Posteriors.Generators"));
        var tracked = File.ReadAllText(Path.Combine(root, "AnalyzerReleases.Unshipped.md")) + File.ReadAllText(Path.Combine(root, "AnalyzerReleases.Shipped.md"));
        foreach (var d in new ModelAnalyzer().SupportedDiagnostics)
            Assert.That(tracked, Does.Contain(d.Id + " | " + d.Category + " | " + d.DefaultSeverity));
    }
}
