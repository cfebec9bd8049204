namespace Posteriors.Modeling;

/// <summary>Temperatures read from a model instead of retyped.</summary>
public static class ModelTemperature
{
    /// <summary>
    /// T = 1/N for the model's <see cref="IModel{TBatch}.DatasetSize"/>: with the batch-normalised log posterior
    /// (mean log-likelihood + log prior / N) this is the temperature at which samplers target the Bayes posterior.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="model"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The model's DatasetSize is not set (not positive).</exception>
    public static double PosteriorTemperature<TBatch>(this IModel<TBatch> model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.DatasetSize < 1)
            throw new InvalidOperationException($"The model's DatasetSize is {model.DatasetSize}; set it to N, the number of data points, first.");
        return 1.0 / model.DatasetSize;
    }
}
