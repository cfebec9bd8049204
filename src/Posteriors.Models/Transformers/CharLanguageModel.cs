using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Models.Transformers;

/// <summary>
/// The log posterior of a character language model over a subset of its parameters (typically the LoRA adapters),
/// evaluated through the module with <see cref="ModuleBinding"/> (zero copy).
/// </summary>
public static class CharLanguageModel
{
    /// <summary>
    /// log π(θ; batch) = mean over the batch's predicted tokens of log p(x_{t+1} | x_{≤t}, θ) + log p(θ) / N.
    /// A batch is token ids [batch, time + 1]: the first <c>time</c> tokens are the input, the last <c>time</c> the targets.
    /// </summary>
    /// <param name="model">The model; the given trees are bound into its parameters of the same names.</param>
    /// <param name="datasetSize">N, the number of predicted tokens in the training set (positive).</param>
    /// <param name="logPrior">
    /// log p(θ), summed over the parameters, or <c>null</c> for a flat prior. It receives the module's bound parameters,
    /// so its gradient reaches the algorithm along with the likelihood's.
    /// </param>
    /// <returns>The log posterior; its <c>Aux</c> is the per-sequence mean log-likelihood [batch].</returns>
    public static LogPosterior<Tensor> LogPosterior(TinyTransformer model, double datasetSize, Func<ParameterTree, Tensor>? logPrior = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Check.Positive(datasetSize, nameof(datasetSize));
        return (parameters, batch) =>
        {
            var wrt = ModuleBinding.Bind(model, parameters);
            var perToken = TokenLogLikelihood(model, batch);
            var value = perToken.mean();
            if (logPrior is not null) value = value + logPrior(wrt) / datasetSize;
            return new LogDensityResult(value, perToken.detach().mean(new long[] { 1 }), wrt);
        };
    }

    /// <summary>log p(x_{t+1} | x_{≤t}) for every position: [batch, time] from token ids [batch, time + 1].</summary>
    /// <exception cref="ArgumentException">The batch is not 2-D int64 with at least two tokens per row.</exception>
    public static Tensor TokenLogLikelihood(TinyTransformer model, Tensor batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.dim() != 2 || batch.shape[1] < 2 || batch.dtype != ScalarType.Int64)
            throw new ArgumentException($"A batch must be int64 token ids [batch, time + 1] with time ≥ 1; got {batch.dtype} {"[" + string.Join(", ", batch.shape) + "]"}.", nameof(batch));
        using var scope = NewDisposeScope();
        var t = batch.shape[1] - 1;
        var logits = model.call(batch.narrow(1, 0, t));
        var logProbs = logits.log_softmax(-1);
        return logProbs.gather(-1, batch.narrow(1, 1, t).unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Log-probabilities of the next token at every position under each of several parameter values
    /// (ensemble members or posterior draws): [members, batch, time, vocabulary]. Each member is bound into the
    /// module in turn (zero copy), so afterwards the module holds the last member's values.
    /// </summary>
    public static Tensor MemberLogProbabilities(TinyTransformer model, IReadOnlyList<ParameterTree> members, Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("Need at least one member.", nameof(members));
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var probs = members.Select(m =>
        {
            ModuleBinding.Bind(model, m);
            return model.call(inputs).log_softmax(-1);
        }).ToArray();
        return stack(probs).MoveToOuterDisposeScope();
    }
}
