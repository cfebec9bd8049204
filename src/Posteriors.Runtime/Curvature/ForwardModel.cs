using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>The outputs of a model's forward pass, and the leaves they are differentiable with respect to.</summary>
/// <param name="Outputs">[B, K] per-datum outputs (logits, means); [B] is read as [B, 1].</param>
/// <param name="Wrt">
/// For a forward that binds θ into a module (<see cref="ModuleBinding.Bind"/>), the module's parameters; <c>null</c>
/// when the outputs are differentiable with respect to the given tree itself.
/// </param>
public readonly record struct ModelOutput(Tensor Outputs, ParameterTree? Wrt = null)
{
    /// <summary>Outputs differentiable with respect to the given parameters.</summary>
    public static implicit operator ModelOutput(Tensor outputs) => new(outputs);
}

/// <summary>The outer likelihood kinds the generalised Gauss–Newton supports.</summary>
public enum OutputLikelihoodKind
{
    /// <summary>Categorical over K classes; outputs are logits [B, K], targets class indices [B] (int64).</summary>
    Categorical,

    /// <summary>
    /// Independent Bernoullis; outputs are logits [B] or [B, K], targets 0/1 of the same shape (floating); the K terms of a
    /// datum are summed.
    /// </summary>
    Bernoulli,

    /// <summary>Normal with a fixed standard deviation σ; outputs are means [B, K] (or [B]), targets the same shape.</summary>
    Normal,
}

/// <summary>
/// The outer log-likelihood log p(y | f) of a model's outputs f, with the negative Hessian H = −∇²_f log p that the
/// generalised Gauss–Newton needs (for these three kinds H does not depend on y, and is positive semi-definite).
/// </summary>
public sealed class OutputLikelihood
{
    private OutputLikelihood(OutputLikelihoodKind kind, double sigma)
    {
        Kind = kind;
        Sigma = sigma;
    }

    /// <summary>Which likelihood.</summary>
    public OutputLikelihoodKind Kind { get; }

    /// <summary>The standard deviation of <see cref="OutputLikelihoodKind.Normal"/> (1 otherwise).</summary>
    public double Sigma { get; }

    /// <summary>Categorical likelihood of logits.</summary>
    public static OutputLikelihood Categorical { get; } = new(OutputLikelihoodKind.Categorical, 1);

    /// <summary>Bernoulli likelihood of logits.</summary>
    public static OutputLikelihood Bernoulli { get; } = new(OutputLikelihoodKind.Bernoulli, 1);

    /// <summary>Normal likelihood with standard deviation <paramref name="sigma"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sigma"/> is not positive and finite.</exception>
    public static OutputLikelihood Normal(double sigma) => new(OutputLikelihoodKind.Normal, Check.Positive(sigma, nameof(sigma)));

    /// <summary>log p(yᵢ | fᵢ) for every datum: shape [B].</summary>
    public Tensor LogProb(Tensor outputs, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        ArgumentNullException.ThrowIfNull(targets);
        switch (Kind)
        {
            case OutputLikelihoodKind.Categorical:
                return nn.functional.log_softmax(outputs, 1).gather(1, targets.to_type(ScalarType.Int64).reshape(-1, 1)).squeeze(1);
            case OutputLikelihoodKind.Bernoulli:
            {
                // K independent Bernoulli outputs per datum: one value per datum, summed over the K.
                var f = AsMatrix(outputs);
                var y = targets.reshape(f.shape).to_type(f.dtype);
                return -nn.functional.binary_cross_entropy_with_logits(f, y, reduction: nn.Reduction.None).sum(1);
            }
            default:
            {
                var f = AsMatrix(outputs);
                var z = (targets.reshape(f.shape).to_type(f.dtype) - f) / Sigma;
                return (z.square() * -0.5).sum(1) - f.shape[1] * (Math.Log(Sigma) + 0.5 * Math.Log(2 * Math.PI));
            }
        }
    }

    /// <summary>
    /// A factor Lᵢ [B, K, C] with Lᵢ Lᵢᵀ = Hᵢ = −∇²_f log p(yᵢ | fᵢ), from detached outputs. GGN = Σᵢ Jᵢᵀ Lᵢ Lᵢᵀ Jᵢ, so
    /// each column c of L turns the GGN into a sum of outer products of per-sample gradients of Σ_k f_ik L_ikc.
    /// </summary>
    public Tensor HessianFactor(Tensor outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var f = AsMatrix(outputs).detach();
        switch (Kind)
        {
            case OutputLikelihoodKind.Categorical:
            {
                // diag(p) − p pᵀ = Σ_k p_k (e_k − p)(e_k − p)ᵀ: column k is √p_k (e_k − p).
                var p = f.softmax(1);
                var k = f.shape[1];
                var eye = torch.eye(k, dtype: f.dtype, device: f.device).unsqueeze(0);
                return (eye - p.unsqueeze(2)) * p.sqrt().unsqueeze(1);
            }
            case OutputLikelihoodKind.Bernoulli:
            {
                // The K outputs are independent: H is diagonal, diag(p (1 − p)).
                var p = f.sigmoid();
                return (p * (1 - p)).sqrt().diag_embed();
            }
            default:
                return torch.eye(f.shape[1], dtype: f.dtype, device: f.device).unsqueeze(0).expand(f.shape[0], -1, -1) / Sigma;
        }
    }

    /// <summary>H v for each datum: <paramref name="v"/> [B, K] → [B, K], from detached outputs.</summary>
    public Tensor HessianVectorProduct(Tensor outputs, Tensor v)
    {
        var f = AsMatrix(outputs).detach();
        v = v.reshape(f.shape);
        switch (Kind)
        {
            case OutputLikelihoodKind.Categorical:
            {
                var p = f.softmax(1);
                return p * v - p * (p * v).sum(1, keepdim: true);
            }
            case OutputLikelihoodKind.Bernoulli:
            {
                var p = f.sigmoid();
                return p * (1 - p) * v;
            }
            default:
                return v / (Sigma * Sigma);
        }
    }

    internal static Tensor AsMatrix(Tensor outputs) => outputs.dim() == 1 ? outputs.unsqueeze(1) : outputs.reshape(outputs.shape[0], -1);

    /// <inheritdoc />
    public override string ToString() => Kind == OutputLikelihoodKind.Normal ? $"Normal(σ={Sigma})" : Kind.ToString();
}

/// <summary>
/// A model split into a forward pass and an outer likelihood, which the generalised Gauss–Newton needs (it
/// differentiates the outputs, not the log-likelihood). A generated model can implement this interface; a lambda
/// model uses <see cref="ForwardModel{TBatch}"/>.
/// </summary>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public interface IForwardModel<in TBatch>
{
    /// <summary>The outputs fᵢ = f(xᵢ; θ) for every datum of the batch (differentiable in θ).</summary>
    ModelOutput Forward(ParameterTree parameters, TBatch batch);

    /// <summary>The targets yᵢ of the batch.</summary>
    Tensor Targets(TBatch batch);

    /// <summary>The outer likelihood log p(y | f).</summary>
    OutputLikelihood Likelihood { get; }
}

/// <summary>An <see cref="IForwardModel{TBatch}"/> from two functions.</summary>
public sealed class ForwardModel<TBatch> : IForwardModel<TBatch>
{
    private readonly Func<ParameterTree, TBatch, ModelOutput> _forward;
    private readonly Func<TBatch, Tensor> _targets;

    /// <summary>Creates the model.</summary>
    /// <param name="forward">Outputs for a batch, e.g. logits [B, K].</param>
    /// <param name="targets">The batch's targets.</param>
    /// <param name="likelihood">The outer likelihood.</param>
    public ForwardModel(Func<ParameterTree, TBatch, ModelOutput> forward, Func<TBatch, Tensor> targets, OutputLikelihood likelihood)
    {
        _forward = forward ?? throw new ArgumentNullException(nameof(forward));
        _targets = targets ?? throw new ArgumentNullException(nameof(targets));
        Likelihood = likelihood ?? throw new ArgumentNullException(nameof(likelihood));
    }

    /// <inheritdoc />
    public OutputLikelihood Likelihood { get; }

    /// <inheritdoc />
    public ModelOutput Forward(ParameterTree parameters, TBatch batch) => _forward(parameters, batch);

    /// <inheritdoc />
    public Tensor Targets(TBatch batch) => _targets(batch);
}

/// <summary>Log densities derived from an <see cref="IForwardModel{TBatch}"/>.</summary>
public static class ForwardModelExtensions
{
    /// <summary>
    /// The per-datum log-likelihood log p(yᵢ | f(xᵢ; θ)), plus <paramref name="logPrior"/>(θ) / <paramref name="datasetSize"/>
    /// when a prior is given (docs/ALGORITHMS.md §1).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="datasetSize"/> is not positive.</exception>
    public static PerDatumLogDensity<TBatch> PerDatumLogDensity<TBatch>(this IForwardModel<TBatch> model,
        Func<ParameterTree, Tensor>? logPrior = null, long datasetSize = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (datasetSize <= 0) throw new ArgumentOutOfRangeException(nameof(datasetSize), datasetSize, "The data set size N must be positive.");
        return (p, batch) =>
        {
            var output = model.Forward(p, batch);
            var lp = model.Likelihood.LogProb(output.Outputs, model.Targets(batch));
            if (logPrior is not null) lp = lp + logPrior(output.Wrt ?? p) / datasetSize;
            return new LogDensityResult(lp, output.Outputs.detach(), output.Wrt);
        };
    }

    /// <summary>The batch-normalised log posterior (mean of <see cref="PerDatumLogDensity{TBatch}"/>).</summary>
    public static LogPosterior<TBatch> LogPosterior<TBatch>(this IForwardModel<TBatch> model,
        Func<ParameterTree, Tensor>? logPrior = null, long datasetSize = 1) =>
        PerDatum.Mean(model.PerDatumLogDensity(logPrior, datasetSize));
}
