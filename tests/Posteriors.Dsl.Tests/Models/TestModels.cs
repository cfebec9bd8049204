using Posteriors.Modeling;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Dsl.Tests.Models;

/// <summary>The example: linear regression with a learned positive noise scale.</summary>
[Model]
public partial class BayesianRegression
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(3, 1, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, 0.5, 2)] public Tensor Bias = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, 1), Positive] public Tensor NoiseScale = ones(1, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor x, Tensor y) =>
        LogProb.Normal(y, x.matmul(Weight).squeeze(1) + Bias, NoiseScale);
}

/// <summary>Robust regression: Student-t and Cauchy priors, a Gamma-distributed positive degrees-of-freedom-free scale.</summary>
[Model]
public partial class RobustRegression
{
    [Prior(Distribution.StudentT, 3, 0, 2)] public Tensor Weight { get; set; } = zeros(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Cauchy, 0, 5)] public Tensor Bias = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Gamma, 2, 3), Positive] public Tensor Scale = ones(1, dtype: ScalarType.Float64);
    [Prior(Distribution.LogNormal, 0.1, 0.7), Positive] public Tensor Spread = ones(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Flat)] public Tensor Offset = zeros(1, dtype: ScalarType.Float64);
    [Fixed] public Tensor Design = ones(2, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor x, Tensor y) =>
        LogProb.StudentT(y, 4, (x * Design).matmul(Weight) + Bias + Offset, Scale * Spread);
}

/// <summary>A classifier with module members and a forward/likelihood split.</summary>
[Model]
public partial class Classifier
{
    [Prior(Distribution.Normal, 0, 1)] public Linear Fc1 = nn.Linear(4, 5, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, 0, 0.5)] public Linear Fc2 = nn.Linear(5, 3, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, 2)] public Tensor Temperature = ones(1, dtype: ScalarType.Float64);

    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor x) => Fc2.forward(nn.functional.tanh(Fc1.forward(x))) * Temperature;
}

/// <summary>A regression network with a Normal outer likelihood.</summary>
[Model]
public partial class RegressionNet
{
    [Prior(Distribution.Normal, 0, 1)] public Linear Hidden = nn.Linear(2, 4, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, 1)] public Linear Out = nn.Linear(4, 1, dtype: ScalarType.Float64);

    [Forward(OutputDistribution.Normal, 0.3)]
    public Tensor Predict(Tensor x) => Out.forward(nn.functional.relu(Hidden.forward(x)));
}

/// <summary>A mis-scaled likelihood (a batch sum), to check the run-time guard; the compile-time warning is silenced here.</summary>
[Model]
public partial class BatchSummingModel
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(1, dtype: ScalarType.Float64);

    [Likelihood]
#pragma warning disable PST0010
    public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.squeeze(1) * Weight, 1.0).sum();
#pragma warning restore PST0010
}

/// <summary>K = 3 independent binary outputs per datum (multi-label logistic regression).</summary>
[Model]
public partial class MultiLabel
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(2, 3, dtype: ScalarType.Float64);

    [Forward(OutputDistribution.Bernoulli)]
    public Tensor Logits(Tensor x) => x.matmul(Weight);
}

/// <summary>A batch sum that keeps a [1] dimension: the run-time check must still catch it (the warning is silenced here).</summary>
[Model]
public partial class KeepdimSummingModel
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(1, dtype: ScalarType.Float64);

    [Likelihood]
#pragma warning disable PST0010
    public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.squeeze(1) * Weight, 1.0).sum(0, keepdim: true);
#pragma warning restore PST0010
}

/// <summary>A two-level hierarchy with many children, to check ancestral prior draws.</summary>
[Model]
public partial class Ancestral
{
    [Prior(Distribution.Normal, 0, 5)] public Tensor Mu = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, 2), Positive] public Tensor Tau = ones(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(Mu), nameof(Tau))] public Tensor Theta = zeros(4000, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) => LogProb.Normal(y, Theta, 1.0);
}

/// <summary>Run-time hyperparameters: a scalar prior scale and a per-feature scale vector, mixed with constants.</summary>
[Model]
public partial class HyperRegression
{
    [Hyper] public double PriorScale = 1;
    [Hyper] public Tensor FeatureScale { get; set; } = tensor(new[] { 1.0, 2.0, 4.0 }, dtype: ScalarType.Float64);
    [Hyper] public double NoiseRate = 3;

    [Prior(Distribution.Normal, 0, nameof(FeatureScale))] public Tensor Weight = zeros(3, dtype: ScalarType.Float64);
    [Prior(Distribution.Laplace, 0.5, nameof(PriorScale))] public Tensor Bias = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Exponential, nameof(NoiseRate)), Positive] public Tensor NoiseScale = ones(1, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(Weight) + Bias, NoiseScale);
}

/// <summary>A regression network whose Normal output σ is learned.</summary>
[Model]
public partial class LearnedNoiseNet
{
    [Prior(Distribution.Normal, 0, 1)] public Linear Hidden = nn.Linear(2, 4, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, 1)] public Linear Out = nn.Linear(4, 1, dtype: ScalarType.Float64);
    [Prior(Distribution.HalfNormal, 1), Positive] public Tensor NoiseScale = full(1, 0.4, dtype: ScalarType.Float64);

    [Forward(OutputDistribution.Normal, nameof(NoiseScale))]
    public Tensor Predict(Tensor x) => Out.forward(nn.functional.relu(Hidden.forward(x)));
}

/// <summary>Every constraint with a prior of matching support.</summary>
[Model]
public partial class Constrained
{
    [Hyper] public double Upper = 3;
    [Prior(Distribution.Uniform, -1, nameof(Upper)), Bounded(-1, nameof(Upper))] public Tensor Shift = zeros(2, dtype: ScalarType.Float64);
    [Prior(Distribution.Beta, 2, 5), UnitInterval] public Tensor Rate = full(2, 0.3, dtype: ScalarType.Float64);
    [Prior(Distribution.Dirichlet, 2), Simplex] public Tensor Weights = full(4, 0.25, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, 0, 3), Ordered] public Tensor Cuts = tensor(new[] { -1.0, 0.0, 2.0 }, dtype: ScalarType.Float64);
    [Prior(Distribution.LkjCholesky, 2), CholeskyCorrelation] public Tensor Corr = eye(3, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y) =>
        LogProb.Normal(y, Shift[0] + Rate[1] + Weights[0] + Cuts[2] + Corr[1, 0], 1.0);
}

/// <summary>A conjugate normal hierarchy: four group means around a common mean, five observations per group.</summary>
[Model]
public partial class GroupMeans : ISimulator<(Tensor Y, Tensor Group)>
{
    [Prior(Distribution.Normal, 0, 1)] public Tensor Mu = zeros(1, dtype: ScalarType.Float64);
    [Prior(Distribution.Normal, nameof(Mu), 0.5)] public Tensor Theta = zeros(4, dtype: ScalarType.Float64);

    [Likelihood]
    public Tensor LogLikelihood(Tensor y, Tensor group) => LogProb.Normal(y, Theta.index_select(0, group), 1.0);

    public (Tensor Y, Tensor Group) Simulate(Posteriors.Trees.ParameterTree parameters, Generator generator)
    {
        var group = arange(4, dtype: ScalarType.Int64).repeat_interleave(5);
        return (parameters["Theta"].index_select(0, group) + randn(new long[] { 20 }, dtype: ScalarType.Float64, generator: generator), group);
    }
}
