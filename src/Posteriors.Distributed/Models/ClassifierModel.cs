using Posteriors.Curvature;
using Posteriors.Models;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Distributed.Models;

/// <summary>
/// A classifier module with a N(0, σ²) prior (<see cref="ClassificationPosterior"/>): the log posterior, the forward model
/// for Fisher/GGN curvature and the predictions every built-in model shares.
/// </summary>
public abstract class ClassifierModel : DistributedModel
{
    private readonly ClassificationPosterior _posterior;
    private readonly nn.Module<Tensor, Tensor> _module;

    /// <summary>A classifier over <paramref name="module"/> for a training set of <paramref name="dataSize"/> rows.</summary>
    protected ClassifierModel(nn.Module<Tensor, Tensor> module, long dataSize, double priorSd)
    {
        _module = module ?? throw new ArgumentNullException(nameof(module));
        _posterior = new ClassificationPosterior(module, dataSize, priorSd);
    }

    /// <inheritdoc />
    public override LogPosterior<(Tensor X, Tensor Y)> LogPosterior => _posterior.LogPosterior;

    /// <inheritdoc />
    public override IForwardModel<(Tensor X, Tensor Y)> ForwardModel => new ForwardModel<(Tensor X, Tensor Y)>(
        (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(_module, p);
            return new ModelOutput(_module.call(batch.X), wrt);
        },
        batch => batch.Y, OutputLikelihood.Categorical);

    /// <inheritdoc />
    public override nn.Module Module => _module;

    /// <inheritdoc />
    public override double PriorPrecision => 1 / (_posterior.PriorSd * _posterior.PriorSd);

    /// <inheritdoc />
    public override Tensor LogProbabilities(ParameterTree parameters, Tensor x) => _posterior.LogProbabilities(parameters, x);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _module.Dispose();
        base.Dispose(disposing);
    }
}
