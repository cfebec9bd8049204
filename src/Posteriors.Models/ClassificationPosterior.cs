using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Models;

/// <summary>
/// The log posterior of a classifier module that maps inputs to logits, with a Gaussian prior N(0, σ²) on every
/// parameter: log π(θ; batch) = (1/B) Σᵢ log softmax(f(xᵢ; θ))_{yᵢ} + log N(θ; 0, σ²I) / N (docs/ALGORITHMS.md §1).
/// The module is evaluated at the given θ through <see cref="ModuleBinding"/> (no copy), so any TorchSharp
/// module works and every algorithm's state stays a plain parameter tree.
/// </summary>
public sealed class ClassificationPosterior
{
    /// <summary>Creates the log posterior of <paramref name="model"/>.</summary>
    /// <param name="model">A module mapping a batch of inputs to logits [B, C].</param>
    /// <param name="dataSize">N, the number of training examples (scales the prior).</param>
    /// <param name="priorSd">σ of the isotropic Gaussian prior.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dataSize"/> or <paramref name="priorSd"/> is not positive.</exception>
    public ClassificationPosterior(nn.Module<Tensor, Tensor> model, long dataSize, double priorSd)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        if (dataSize <= 0) throw new ArgumentOutOfRangeException(nameof(dataSize), dataSize, "The data set size N must be positive.");
        DataSize = dataSize;
        PriorSd = Check.Positive(priorSd, nameof(priorSd));
    }

    /// <summary>The classifier (its own parameters are re-pointed at every evaluation).</summary>
    public nn.Module<Tensor, Tensor> Model { get; }

    /// <summary>N, the training set size.</summary>
    public long DataSize { get; }

    /// <summary>σ of the prior.</summary>
    public double PriorSd { get; }

    /// <summary>A copy of the module's current parameters (its initialisation), to start an algorithm from.</summary>
    public ParameterTree InitialParameters() => ParameterTree.FromModule(Model).Clone();

    /// <summary>
    /// The batch-normalised log posterior over (inputs, int64 labels) batches; its auxiliary output is the logits.
    /// </summary>
    public LogPosterior<(Tensor X, Tensor Y)> LogPosterior => Evaluate;

    /// <summary>The per-example log-likelihoods log p(yᵢ | xᵢ, θ), [B], differentiable w.r.t. the bound module.</summary>
    /// <returns>The log-likelihoods and the module's parameters bound to <paramref name="parameters"/>.</returns>
    public (Tensor LogLikelihood, Tensor Logits, ParameterTree Wrt) LogLikelihood(ParameterTree parameters, (Tensor X, Tensor Y) batch)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var wrt = ModuleBinding.Bind(Model, parameters);
        var logits = Model.call(batch.X);
        var logLik = nn.functional.log_softmax(logits, 1).gather(1, batch.Y.unsqueeze(1)).squeeze(1);
        return (logLik, logits, wrt);
    }

    /// <summary>log p(θ) of the isotropic Gaussian prior (normalised).</summary>
    public Tensor LogPrior(ParameterTree parameters) => DiagNormal.LogProb(parameters, mean: 0, sd: PriorSd);

    private LogDensityResult Evaluate(ParameterTree parameters, (Tensor X, Tensor Y) batch)
    {
        var (logLik, logits, wrt) = LogLikelihood(parameters, batch);
        var value = logLik.mean() + LogPrior(wrt) / DataSize;
        return new LogDensityResult(value, logits, wrt);
    }

    /// <summary>Log predictive probabilities log softmax f(x; θ) [B, C] at <paramref name="parameters"/>, without autograd.</summary>
    public Tensor LogProbabilities(ParameterTree parameters, Tensor x)
    {
        using var _ = no_grad();
        ModuleBinding.Bind(Model, parameters);
        return nn.functional.log_softmax(Model.call(x), 1);
    }

    /// <summary>Logits f(x; θ) [B, C] at <paramref name="parameters"/>, without autograd.</summary>
    public Tensor Logits(ParameterTree parameters, Tensor x)
    {
        using var _ = no_grad();
        ModuleBinding.Bind(Model, parameters);
        return Model.call(x);
    }
}
