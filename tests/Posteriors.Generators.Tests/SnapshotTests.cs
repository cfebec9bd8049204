using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace Posteriors.Generators.Tests;

/// <summary>
/// Golden files of the generated code for each model shape (Snapshots/Name.g.cs.txt). UPDATE_SNAPSHOTS=1 rewrites
/// them; a missing snapshot is written on first run, except under CI=true where it fails.
/// </summary>
public class SnapshotTests
{
    private const string Tensors = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class BayesianRegression
        {
            [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(8, 1);
            [Prior(Distribution.Normal, 0, 1)] public Tensor Bias { get; set; } = zeros(1);

            [Likelihood]
            public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(Weight).squeeze(1) + Bias, 0.5);
        }
        """;

    private const string Positive = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class NoisyRegression
        {
            [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(8, 1);
            [Prior(Distribution.HalfNormal, 1), Positive] public Tensor NoiseScale = ones(1);
            [Prior(Distribution.Flat), Positive] public Tensor Rate = ones(1);

            [Likelihood]
            public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(Weight).squeeze(1) * Rate, NoiseScale);
        }
        """;

    private const string Modules = TestCompilation.Usings + """
        namespace Demo.Nets;

        [Model]
        public partial class Mlp
        {
            [Prior(Distribution.Normal, 0, 1)] public Linear Fc1 = nn.Linear(784, 512);
            [Prior(Distribution.Normal, 0, 0.1)] public Linear Fc2 = nn.Linear(512, 10);

            [Likelihood]
            public Tensor LogLikelihood(Tensor x, Tensor labels) =>
                LogProb.Categorical(Fc2.forward(nn.functional.relu(Fc1.forward(x))), labels);
        }
        """;

    private const string ForwardSplit = TestCompilation.Usings + """
        [Model]
        public partial class Classifier
        {
            [Prior(Distribution.Normal, 0, 1)] public Linear Body = nn.Linear(4, 3);
            [Prior(Distribution.HalfCauchy, 2.5), Positive] public Tensor Temperature = ones(1);

            [Forward(OutputDistribution.Categorical)]
            public Tensor Logits(Tensor x) => Body.forward(x) / Temperature;
        }
        """;

    private const string SeveralPriors = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class Priors
        {
            [Prior(Distribution.Laplace, -1.5, 0.25)] public Tensor A = zeros(3);
            [Prior(Distribution.StudentT, 3, 0, 2.5)] public Tensor B = zeros(3);
            [Prior(Distribution.Cauchy, 0, 1e-3)] public Tensor C = zeros(3);
            [Prior(Distribution.LogNormal, 0.1, 1), Positive] public Tensor D = ones(3);
            [Prior(Distribution.Gamma, 2, 0.5), Positive] public Tensor E = ones(3);
            [Prior(Distribution.Exponential, 1), Positive] public Tensor F = ones(3);
            [Fixed] public Tensor Data = ones(3);

            [Likelihood]
            public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A + B + C, D * E * F).sum(1);
        }
        """;

    private const string Hierarchical = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class EightSchools
        {
            [Hyper] public double PriorScale = 5;
            [Prior(Distribution.Normal, 0, nameof(PriorScale))] public Tensor Mu = zeros(1);
            [Prior(Distribution.HalfCauchy, 5), Positive] public Tensor Tau = ones(1);
            [Prior(Distribution.Normal, nameof(Mu), nameof(Tau))] public Tensor Theta = zeros(8);
            [Fixed] public Tensor Sigma = ones(8);

            [Likelihood]
            public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, Theta, Sigma);
        }
        """;

    private const string Constrained = TestCompilation.Usings + """
        namespace Demo;

        [Model]
        public partial class Mixture
        {
            [Hyper] public double Upper = 3;
            [Prior(Distribution.Dirichlet, 2), Simplex] public Tensor Weights = ones(3) / 3;
            [Prior(Distribution.Normal, 0, 5), Ordered] public Tensor Means = zeros(3).cumsum(0);
            [Prior(Distribution.Uniform, 0, nameof(Upper)), Bounded(0, nameof(Upper))] public Tensor Spread = ones(1);
            [Prior(Distribution.LkjCholesky, 2), CholeskyCorrelation] public Tensor Corr = eye(2);

            [Likelihood]
            public Tensor LogLikelihood(Tensor y) =>
                (Weights.log() + LogProb.Normal(y.unsqueeze(1), Means, Spread)).logsumexp(1);
        }
        """;

    public static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData("Constrained", Constrained, "Demo.Mixture.g.cs").SetName("Snapshot_Constrained");
        yield return new TestCaseData("Hierarchical", Hierarchical, "Demo.EightSchools.g.cs").SetName("Snapshot_Hierarchical");
        yield return new TestCaseData("Tensors", Tensors, "Demo.BayesianRegression.g.cs").SetName("Snapshot_Tensors");
        yield return new TestCaseData("Positive", Positive, "Demo.NoisyRegression.g.cs").SetName("Snapshot_Positive");
        yield return new TestCaseData("Modules", Modules, "Demo.Nets.Mlp.g.cs").SetName("Snapshot_Modules");
        yield return new TestCaseData("ForwardSplit", ForwardSplit, "Classifier.g.cs").SetName("Snapshot_ForwardSplit");
        yield return new TestCaseData("SeveralPriors", SeveralPriors, "Demo.Priors.g.cs").SetName("Snapshot_SeveralPriors");
    }

    [TestCaseSource(nameof(Cases))]
    public void GeneratedCodeMatchesSnapshotAndCompiles(string name, string source, string hintName)
    {
        var (sources, diagnostics) = TestCompilation.Generate(source);
        Assert.That(sources.Keys, Is.EquivalentTo(new[] { hintName }));
        Assert.That(diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).Select(d => d.ToString()), Is.Empty,
            "the generated code must compile cleanly");
        var text = sources[hintName];
        Assert.That(text, Does.StartWith("// <auto-generated/>"));
        var longest = text.Split('\n').OrderByDescending(l => l.Length).First();
        Assert.That(longest.Length, Is.LessThanOrEqualTo(120), "longest line: " + longest);
        MatchSnapshot(name, text);
    }

    [Test]
    public void InvalidModelGeneratesNothing()
    {
        var (sources, _) = TestCompilation.Generate(TestCompilation.Usings + """
            [Model]
            public partial class NoLikelihood
            {
                [Prior(Distribution.Normal, 0, 1)] public Tensor W = zeros(1);
            }
            """);
        Assert.That(sources, Is.Empty);
    }

    [Test]
    public void DoublesAreWrittenCultureInvariantly()
    {
        var previous = Thread.CurrentThread.CurrentCulture;
        try
        {
            Thread.CurrentThread.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            var (sources, diagnostics) = TestCompilation.Generate(SeveralPriors);
            Assert.That(sources["Demo.Priors.g.cs"], Does.Contain("loc: -1.5d, scale: 0.25d").And.Contain("0.001d"));
            Assert.That(diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error), Is.Empty);
        }
        finally
        {
            Thread.CurrentThread.CurrentCulture = previous;
        }
    }

    private static void MatchSnapshot(string name, string actual, [CallerFilePath] string testFile = "")
    {
        var path = Path.Combine(Path.GetDirectoryName(testFile)!, "Snapshots", name + ".g.cs.txt");
        actual = Normalize(actual);
        if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") == "1" || !File.Exists(path))
        {
            if (!File.Exists(path) && string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
                Assert.Fail($"Snapshot {path} is missing; run the tests locally with UPDATE_SNAPSHOTS=1 and commit it.");
            File.WriteAllText(path, actual);
            if (Environment.GetEnvironmentVariable("UPDATE_SNAPSHOTS") != "1")
                Assert.Warn($"Created snapshot {path}; review and commit it.");
            return;
        }
        var expected = Normalize(File.ReadAllText(path));
        Assert.That(actual, Is.EqualTo(expected), $"Generated code differs from {path}. If the change is intended, rerun with UPDATE_SNAPSHOTS=1.");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n").TrimEnd() + "\n";
}
