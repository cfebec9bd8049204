using Posteriors.Dsl.Tests.Models;
using Posteriors.Ensembles;
using Posteriors.Models.Hierarchical;
using Posteriors.Modeling;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests;

/// <summary>
/// The generated closed-form prior gradient (LogPriorGradient, and FirstOrderLogPosterior that hands it to the samplers)
/// against autograd through the generated LogPrior: every prior on every constraint the DSL accepts, hierarchical
/// arguments of every distribution, and both forms of eight schools.
/// </summary>
public class AnalyticPriorGradientTests
{
    private static ParameterTree RandomPoint(ParameterTree like, ulong seed)
    {
        var g = new Generator(seed);
        return like.Map(t => 0.7 * randn(t.shape, dtype: t.dtype, generator: g));
    }

    private static void AssertGradientIsAutograd(Func<ParameterTree, Tensor> logPrior, Func<ParameterTree, ParameterTree> gradient, ParameterTree at,
        params string[] flat)
    {
        var leaves = at.Map(t => t.detach().requires_grad_(true));
        var value = logPrior(leaves);
        var expected = autograd.grad(new[] { value }, leaves.Leaves.ToArray(), allow_unused: true)
            .Select((g, i) => g is null || g.IsInvalid ? zeros_like(at.Leaves[i]) : g).ToArray();
        var analytic = gradient(at);
        Assert.That(analytic.Names, Is.EqualTo(at.Names));
        for (var i = 0; i < at.Count; i++)
        {
            Assert.That(analytic.Leaves[i].shape, Is.EqualTo(at.Leaves[i].shape), at.Names[i]);
            var scale = Math.Max(1, expected[i].abs().max().item<double>());
            var difference = (analytic.Leaves[i] - expected[i]).abs().max().item<double>();
            Assert.That(difference, Is.LessThanOrEqualTo(1e-6 * scale), $"∂ log prior / ∂ {at.Names[i]}: {analytic.Leaves[i].str()} vs autograd {expected[i].str()}");
            if (!flat.Contains(at.Names[i]))
                Assert.That(expected[i].abs().sum().item<double>(), Is.GreaterThan(0), $"{at.Names[i]}: a zero gradient proves nothing");
        }
    }

    /// <param name="flat">Unconstrained members with a flat prior, whose gradient is zero.</param>
    private static void Check<TBatch>(IModel<TBatch> model, ulong seed, params string[] flat) =>
        AssertGradientIsAutograd(model.LogPrior, model.LogPriorGradient, RandomPoint(model.InitialParameters(), seed), flat);

    [Test]
    public void RealLinePriors() => Check(new RealLinePriors(), 1, "G");

    [Test]
    public void PositivePriorsIncludingTruncatedRealLinePriors() => Check(new PositivePriors(), 2);

    [Test]
    public void IntervalPriors() => Check(new IntervalPriors(), 3);

    [Test]
    public void SimplexPriors() => Check(new SimplexPriors(), 4);

    [Test]
    public void OrderedPriors() => Check(new OrderedPriors(), 5);

    [Test]
    public void CholeskyCorrelationPriors() => Check(new CorrelationPriors(), 6);

    [Test]
    public void HierarchicalArgumentsOfEveryDistributionSendGradientToTheirParents()
    {
        foreach (var seed in new ulong[] { 7, 8, 9 }) Check(new HierarchicalPriors(), seed);
    }

    [Test]
    public void ModuleAndExistingModels()
    {
        Check(new Classifier(), 10);
        Check(new Constrained(), 11);
        Check(new HyperRegression(), 12);
    }

    [Test]
    public void EightSchoolsBothForms()
    {
        Check(new EightSchoolsCentred(), 13);
        Check(new EightSchoolsNonCentred(), 14);
    }

    [Test]
    public void FirstOrderLogPosteriorHasTheValueAndGradientOfLogPosterior()
    {
        var batch = EightSchools.Batch();
        foreach (var (logPosterior, firstOrder, at) in new (LogPosterior<(Tensor, Tensor)>, LogPosterior<(Tensor, Tensor)>, ParameterTree)[]
                 {
                     (new EightSchoolsCentred { DatasetSize = 8 }.LogPosterior, new EightSchoolsCentred { DatasetSize = 8 }.FirstOrderLogPosterior,
                         RandomPoint(new EightSchoolsCentred().InitialParameters(), 15)),
                     (new EightSchoolsNonCentred { DatasetSize = 8 }.LogPosterior, new EightSchoolsNonCentred { DatasetSize = 8 }.FirstOrderLogPosterior,
                         RandomPoint(new EightSchoolsNonCentred().InitialParameters(), 16)),
                 })
        {
            var reference = Autodiff.ValueAndGrad(logPosterior, at, batch);
            var folded = Autodiff.ValueAndGrad(firstOrder, at, batch);
            Assert.That(folded.Value.item<double>(), Is.EqualTo(reference.Value.item<double>()).Within(1e-12));
            for (var i = 0; i < at.Count; i++)
                Assert.That((folded.Gradient.Leaves[i] - reference.Gradient.Leaves[i]).abs().max().item<double>(), Is.LessThan(1e-9), at.Names[i]);
        }
        // The prior's share of the result is a constant for autograd: its gradient is only in AnalyticGradient.
        var result = new EightSchoolsCentred { DatasetSize = 8 }.FirstOrderLogPosterior(RandomPoint(new EightSchoolsCentred().InitialParameters(), 17), batch);
        Assert.That(result.AnalyticGradient, Is.Not.Null);
    }

    [Test]
    public void SghmcOnTheFirstOrderLogPosteriorFollowsTheAutogradTrajectory()
    {
        var batch = EightSchools.Batch();
        var model = new EightSchoolsNonCentred { DatasetSize = 8 };
        var start = RandomPoint(model.InitialParameters(), 18);
        TrajectoryAssert.SameSghmcTrajectory<(Tensor, Tensor)>(model.LogPosterior, model.FirstOrderLogPosterior, start, batch, lr: 0.01,
            temperature: 0.1, steps: 25);
    }

    [Test]
    public void ParallelChainsSumFoldsTheClosedFormGradientIntoEachChain()
    {
        var batch = EightSchools.Batch();
        var model = new EightSchoolsCentred { DatasetSize = 8 };
        var stacked = ParallelChains.Initialise(3, k => RandomPoint(model.InitialParameters(), (ulong)(20 + k)));
        var reference = Autodiff.ValueAndGrad(ParallelChains.Sum<(Tensor, Tensor)>(model.LogPosterior), stacked, batch);
        var folded = Autodiff.ValueAndGrad(ParallelChains.Sum<(Tensor, Tensor)>(model.FirstOrderLogPosterior), stacked, batch);
        Assert.That(folded.Value.item<double>(), Is.EqualTo(reference.Value.item<double>()).Within(1e-9));
        for (var i = 0; i < stacked.Count; i++)
        {
            Assert.That(reference.Gradient.Leaves[i].abs().sum().item<double>(), Is.GreaterThan(0), stacked.Names[i]);
            Assert.That((folded.Gradient.Leaves[i] - reference.Gradient.Leaves[i]).abs().max().item<double>(), Is.LessThan(1e-9),
                $"stacked gradient of {stacked.Names[i]}: {folded.Gradient.Leaves[i].str()} vs autograd {reference.Gradient.Leaves[i].str()}");
        }
    }

    [Test]
    public void ComputationsThatDifferentiateTheValueAskForLogPosterior()
    {
        var model = new EightSchoolsCentred { DatasetSize = 8 };
        var e = Assert.Throws<NotSupportedException>(() =>
            Autodiff.Evaluate<(Tensor, Tensor)>(model.FirstOrderLogPosterior, model.InitialParameters(), EightSchools.Batch()));
        Assert.That(e!.Message, Does.Contain("AnalyticGradient"));
    }
}

/// <summary>Every real-line prior on unconstrained members; constant and per-element ([Hyper] tensor) arguments.</summary>
[Model]
public partial class RealLinePriors
{
    [Hyper] public Tensor Scales = tensor(new[] { 0.5, 1.0, 2.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0.3, 1.5)] public Tensor A = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, nameof(Scales))] public Tensor B = zeros(2, 3, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, -0.2, 0.8)] public Tensor C = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, 0.1, nameof(Scales))] public Tensor D = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, 3, 0.2, 0.7)] public Tensor E = zeros(4, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, 5, 0, nameof(Scales))] public Tensor F = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat)] public Tensor G = zeros(2, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + B[0, 0] + C[0] + D[0] + E[0] + F[0] + G[0], 1.0);
}

/// <summary>Every prior a [Positive] member takes: positive-support priors, truncated real-line priors, Flat.</summary>
[Model]
public partial class PositivePriors
{
    [Hyper] public Tensor Rates = tensor(new[] { 0.5, 2.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, 1.3), Positive] public Tensor A = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfCauchy, 0.6), Positive] public Tensor B = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.LogNormal, 0.2, 0.9), Positive] public Tensor C = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Gamma, 2.5, 1.7), Positive] public Tensor D = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Gamma, 2.5, nameof(Rates)), Positive] public Tensor E = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Exponential, 0.8), Positive] public Tensor F = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), Positive] public Tensor G = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0.5, 2), Positive] public Tensor H = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, 1, 0.5), Positive] public Tensor I = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, 0, 1), Positive] public Tensor J = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, 4, 0, 1.5), Positive] public Tensor K = ones(2, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + B[0] + C[0] + D[0] + E[0] + F[0] + G[0] + H[0] + I[0] + J[0] + K[0], 1.0);
}

/// <summary>Interval members: Uniform and Flat on [Bounded] (a [Hyper] bound), Beta and Flat on [UnitInterval].</summary>
[Model]
public partial class IntervalPriors
{
    [Hyper] public double Upper = 3;
    [Prior(Distribution.Uniform, -1, nameof(Upper)), Bounded(-1, nameof(Upper))] public Tensor A = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), Bounded(2, 5)] public Tensor B = full(2, 3.0, dtype: ScalarType.Float64);
    [Prior(Distribution.Beta, 2, 5), UnitInterval] public Tensor C = full(3, 0.3, dtype: ScalarType.Float64);
    [Prior(Distribution.Beta, 0.7, 1.5), UnitInterval] public Tensor D = full(2, 0.3, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), UnitInterval] public Tensor E = full(2, 0.5, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + B[0] + C[0] + D[0] + E[0], 1.0);
}

/// <summary>Simplex members: Dirichlet with a scalar and a per-component concentration, and Flat; batched vectors too.</summary>
[Model]
public partial class SimplexPriors
{
    [Hyper] public Tensor Concentration = tensor(new[] { 0.5, 1.0, 2.0, 4.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Dirichlet, 2), Simplex] public Tensor A = full(4, 0.25, dtype: ScalarType.Float64);
    [Prior(Distribution.Dirichlet, nameof(Concentration)), Simplex] public Tensor B = full(2, 4, 0.25, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), Simplex] public Tensor C = full(3, 1.0 / 3, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + B[0, 1] + C[2], 1.0);
}

/// <summary>Ordered members: every real-line prior, and Flat.</summary>
[Model]
public partial class OrderedPriors
{
    [Prior(Distribution.Normal, 0, 3), Ordered] public Tensor A = tensor(new[] { -1.0, 0.0, 2.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, 0.5, 2), Ordered] public Tensor B = tensor(new[] { -1.0, 0.0, 2.0, 3.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, 0, 1), Ordered] public Tensor C = tensor(new[] { -1.0, 0.5 }, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, 3, 0, 2), Ordered] public Tensor D = tensor(new[] { -1.0, 0.0, 2.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), Ordered] public Tensor E = tensor(new[] { 0.0, 1.0, 2.0 }, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + B[0] + C[0] + D[0] + E[0], 1.0);
}

/// <summary>Cholesky factors of correlation matrices: LKJ with η above and below 1, and Flat, in 2, 3 and 4 dimensions.</summary>
[Model]
public partial class CorrelationPriors
{
    [Prior(Distribution.LkjCholesky, 2), CholeskyCorrelation] public Tensor A = eye(3, dtype: ScalarType.Float64);
    [Prior(Distribution.LkjCholesky, 0.7), CholeskyCorrelation] public Tensor B = eye(4, dtype: ScalarType.Float64);
    [Prior(Distribution.LkjCholesky, 1.5), CholeskyCorrelation] public Tensor C = eye(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat), CholeskyCorrelation] public Tensor D = eye(4, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[1, 0] + B[2, 1] + C[1, 0] + D[3, 2], 1.0);
}

/// <summary>
/// Hierarchical priors: every argument of every distribution names a parameter somewhere, and the parents are
/// themselves constrained (positive, unit interval, simplex, ordered, Cholesky factor), so gradients flow back through
/// their bijectors.
/// </summary>
[Model]
public partial class HierarchicalPriors
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Mu = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, 1), Positive] public Tensor S = ones(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Gamma, 4, 1), Positive] public Tensor Nu = ones(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Beta, 2, 2), UnitInterval] public Tensor P = full(1, 0.5, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(Mu), nameof(S))] public Tensor A = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, nameof(P), nameof(S))] public Tensor B = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, nameof(Mu), nameof(S))] public Tensor C = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, nameof(Nu), nameof(Mu), nameof(S))] public Tensor D = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, nameof(S)), Positive] public Tensor E = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfCauchy, nameof(S)), Positive] public Tensor F = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.LogNormal, nameof(Mu), nameof(S)), Positive] public Tensor G = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Gamma, nameof(Nu), nameof(S)), Positive] public Tensor H = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Exponential, nameof(S)), Positive] public Tensor I = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(Mu), nameof(S)), Positive] public Tensor J = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, nameof(Mu), nameof(S)), Positive] public Tensor K = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, nameof(P), nameof(S)), Positive] public Tensor L = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.StudentT, nameof(Nu), 0, nameof(S)), Positive] public Tensor M = ones(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Beta, nameof(S), nameof(Nu)), UnitInterval] public Tensor Q = full(2, 0.5, dtype: ScalarType.Float64);
    [Prior(Distribution.Dirichlet, nameof(Nu)), Simplex] public Tensor W = full(3, 1.0 / 3, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(W), 1)] public Tensor V = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, 2), Ordered] public Tensor O = tensor(new[] { -1.0, 0.0, 1.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(O), nameof(S))] public Tensor Z = zeros(2, 3, dtype: ScalarType.Float64);
    [Prior(Distribution.LkjCholesky, nameof(Nu)), CholeskyCorrelation] public Tensor R = eye(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(R), 1)] public Tensor Y = zeros(3, 3, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, A[0] + E[0] + Q[0] + V[0] + Z[0, 0] + Y[0, 0], 1.0);
}
