using Posteriors.Modeling;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Models.Zoo;

/// <summary>
/// The Fashion-MNIST CNN (<see cref="SmallCnn"/>) as an attributed model: N(0, 1) on every weight, categorical
/// likelihood of the logits. Set <see cref="IModel{TBatch}.DatasetSize"/>, then pass <c>model.LogPosterior</c> to any algorithm;
/// GGN Laplace and linearised predictives use the forward/likelihood split.
/// </summary>
[Model]
public partial class CnnClassifier
{
    /// <summary>Creates the model (widths as for <see cref="SmallCnn"/>).</summary>
    public CnnClassifier(int classes = 10, int channels1 = 32, int channels2 = 64, int hidden = 128) =>
        Net = new SmallCnn(classes, channels1, channels2, hidden);

    /// <summary>The network; every parameter has the prior N(0, 1).</summary>
    [Prior(Distribution.Normal, 0, 1)] public SmallCnn Net;

    /// <summary>Logits [B, classes] for images [B, 1, 28, 28].</summary>
    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor x) => Net.forward(x);
}

/// <summary>
/// The CNN-LSTM text classifier (<see cref="CnnLstm"/>) as an attributed model with the literature's prior
/// N(0, 1/40) (σ = 1/√40 ≈ 0.1581) on every weight and a categorical likelihood.
/// </summary>
[Model]
public partial class CnnLstmClassifier
{
    /// <summary>Creates the model (sizes as for <see cref="CnnLstm"/>).</summary>
    public CnnLstmClassifier(int vocabulary = 20_000, int classes = 2) => Net = new CnnLstm(vocabulary, classes);

    /// <summary>The network; every parameter has the prior N(0, 1/40).</summary>
    [Prior(Distribution.Normal, 0, 0.15811388300841897)] public CnnLstm Net;

    /// <summary>Logits [B, classes] for token ids [B, L].</summary>
    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor tokens) => Net.forward(tokens);
}

/// <summary>A multilayer perceptron classifier (<see cref="MlpClassifier"/>) with N(0, 1) priors and a categorical likelihood.</summary>
[Model]
public partial class MlpModel
{
    /// <summary>Creates the model.</summary>
    public MlpModel(int inputs, IReadOnlyList<int> hidden, int classes) => Net = new MlpClassifier(inputs, hidden, classes);

    /// <summary>The network; every parameter has the prior N(0, 1).</summary>
    [Prior(Distribution.Normal, 0, 1)] public MlpClassifier Net;

    /// <summary>Logits [B, classes].</summary>
    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor x) => Net.forward(x);
}

/// <summary>Multinomial logistic regression with N(0, 1) priors on the weights and biases.</summary>
[Model]
public partial class LogisticRegressionModel
{
    /// <summary>Creates the model.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public LogisticRegressionModel(int inputs, int classes)
    {
        if (inputs < 1) throw new ArgumentOutOfRangeException(nameof(inputs), inputs, "Must be positive.");
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "Need at least two classes.");
        Linear = nn.Linear(inputs, classes);
    }

    /// <summary>The linear map from features to logits.</summary>
    [Prior(Distribution.Normal, 0, 1)] public Linear Linear;

    /// <summary>Logits [B, classes] for inputs [B, …] (flattened from dimension 1).</summary>
    [Forward(OutputDistribution.Categorical)]
    public Tensor Logits(Tensor x) => Linear.forward(x.flatten(1));
}

/// <summary>
/// Bayesian linear regression with a learned noise scale: y ~ N(x·w + b, σ²), w, b ~ N(0, 1), σ ~ LogNormal(0, 1)
/// (held as log σ, so samplers move freely). Batches are (x [B, F], y [B]).
/// </summary>
[Model]
public partial class LinearRegressionModel
{
    /// <summary>Creates the model for <paramref name="features"/> inputs (float32, zeros, σ = 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="features"/> is not positive.</exception>
    public LinearRegressionModel(int features)
    {
        if (features < 1) throw new ArgumentOutOfRangeException(nameof(features), features, "Need at least one feature.");
        Weight = zeros(features, 1);
    }

    /// <summary>Coefficients [F, 1].</summary>
    [Prior(Distribution.Normal, 0, 1)] public Tensor Weight;

    /// <summary>Intercept [1].</summary>
    [Prior(Distribution.Normal, 0, 1)] public Tensor Bias = zeros(1);

    /// <summary>Noise scale σ [1].</summary>
    [Prior(Distribution.LogNormal, 0, 1), Positive] public Tensor NoiseScale = ones(1);

    /// <summary>log N(yᵢ; xᵢ·w + b, σ²) per datum.</summary>
    [Likelihood]
    public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, Checked.MatMul(x, Weight).squeeze(1) + Bias, NoiseScale);
}
