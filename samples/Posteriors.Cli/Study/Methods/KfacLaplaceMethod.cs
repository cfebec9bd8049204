using System.Runtime.CompilerServices;
using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Models.Data;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study.Methods;

/// <summary>
/// KFAC Laplace around the seed's MAP estimate (<c>--laplace-layers</c>: last = fc2, dense = fc1 and fc2, all = every
/// convolution and dense layer), the Kronecker factors summed over the whole training set (one label sampled from the
/// model per image: one backward pass per batch), with the linearised (GLM) predictive and its multiclass probit
/// approximation; the covariance is scaled by τ. The prior precision is the study prior's 1/σ², or (the <c>-ml</c>
/// variant) one per layer maximising the Laplace evidence.
/// </summary>
public sealed class KfacLaplaceMethod : IStudyMethod
{
    // Both variants of a seed share one fit (the factors do not depend on the prior precision).
    private static readonly ConditionalWeakTable<StudyContext, Dictionary<int, KfacLaplaceState>> Fits = new();

    private readonly bool _tuned;

    /// <summary>The variant with the study prior's precision, or with the marginal-likelihood-tuned one.</summary>
    public KfacLaplaceMethod(bool tuned) => _tuned = tuned;

    /// <inheritdoc />
    public string Name => _tuned ? "laplace-kfac-lin-ml" : "laplace-kfac-lin";

    /// <inheritdoc />
    public string Description => $"KFAC Laplace at the MAP, linearised probit predictive, covariance × τ, {(_tuned ? "per-layer prior precision tuned by the Laplace evidence" : "the study prior's precision")}";

    /// <inheritdoc />
    public bool Tempered => true;

    /// <inheritdoc />
    public long Steps(StudyContext context) => context.N / context.BatchSize + 1;

    /// <summary>
    /// The module names of the layers for <c>--laplace-layers</c> / <c>--layers</c>: last (the last Linear layer), dense
    /// (every Linear layer) or all (null: every Linear and Conv2d layer). For the study's CNN: fc2; fc1 and fc2; all four.
    /// </summary>
    public static string[]? LayersFor(nn.Module model, string layers)
    {
        var linear = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).ToArray();
        return layers switch
        {
            "all" => null,
            "dense" => linear,
            _ => new[] { linear[^1] },
        };
    }

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var mode = context.Map(seed, (_, s) => progress(0, "MAP: " + s));
        var fits = Fits.GetOrCreateValue(context);
        if (!fits.TryGetValue(seed, out var state))
        {
            state = Fit(context.Model, mode, context.Train, context.BatchSize, LayersFor(context.Model, context.Options.LaplaceLayers), sampled: true, seed,
                step => progress(step, "KFAC factors"));
            fits[seed] = state;
        }
        var prior = 1 / (context.Posterior.PriorSd * context.Posterior.PriorSd);
        if (_tuned)
        {
            var tuned = MarginalLikelihood.Tune(MarginalLikelihood.Groups(state), state.LogLikelihoodSum.ToDouble(), perGroup: true, initial: prior);
            state.SetPriorPrecision(prior, tuned.PriorPrecision);
            progress(Steps(context), "δ " + string.Join(", ", tuned.PriorPrecision.Select(d => d.ToString("G3"))));
        }
        else
        {
            state.SetPriorPrecision(prior);
        }
        return new MethodOutput(LogProbs(state, context.Model, context.Test, tau!.Value).unsqueeze(0),
            LogProbs(state, context.Model, context.Ood, tau.Value).unsqueeze(0));
    }

    /// <summary>The categorical CNN as an <see cref="IForwardModel{TBatch}"/> through the bound module.</summary>
    public static ForwardModel<(Tensor X, Tensor Y)> ForwardModel(nn.Module<Tensor, Tensor> model) => new(
        (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(model, p);
            return new ModelOutput(model.call(batch.X), wrt);
        },
        batch => batch.Y, OutputLikelihood.Categorical);

    /// <summary>The KFAC transform of <paramref name="model"/>'s <paramref name="layers"/> (all its Linear and Conv2d layers when null), prior precision 1.</summary>
    public static Kfac<(Tensor X, Tensor Y)> Transform(nn.Module<Tensor, Tensor> model, IEnumerable<string>? layers, bool sampled,
        KfacConvFactors convFactors = KfacConvFactors.Expand) =>
        Kfac.Build(ForwardModel(model), model, priorPrecision: 1, layers: layers, sampled: sampled, convFactors: convFactors);

    /// <summary>Fits the KFAC factors at <paramref name="mode"/> over every image of <paramref name="train"/> (prior precision 1 until set).</summary>
    public static KfacLaplaceState Fit(nn.Module<Tensor, Tensor> model, ParameterTree mode, ImageDataSet train, int batchSize,
        IEnumerable<string>? layers, bool sampled, int seed, Action<long> progress, KfacConvFactors convFactors = KfacConvFactors.Expand)
    {
        var transform = Transform(model, layers, sampled, convFactors);
        var state = transform.Init(mode, seed);
        long step = 0;
        foreach (var batch in train.Sequential(batchSize))
        {
            using (NewDisposeScope()) state = transform.Update(state, batch, inplace: true);
            progress(++step);
        }
        return state;
    }

    /// <summary>
    /// The eigenvalue-correction pass (EKFAC) over every image of <paramref name="train"/> in the fit's batches, with the
    /// state's curvature and seed (the fit's sampled labels when the batches are the same as the fit's).
    /// </summary>
    public static KfacLaplaceState CorrectEigenvalues(nn.Module<Tensor, Tensor> model, KfacLaplaceState state, ImageDataSet train, int batchSize,
        IEnumerable<string>? layers, bool sampled, KfacConvFactors convFactors = KfacConvFactors.Expand)
    {
        var transform = Transform(model, layers, sampled, convFactors);
        foreach (var batch in train.Sequential(batchSize))
            using (NewDisposeScope()) state = transform.UpdateEigenvalueCorrection(state, batch, inplace: true);
        return state;
    }

    /// <summary>Log predictive probabilities [N, C] of the linearised predictive (multiclass probit) on <paramref name="data"/>.</summary>
    public static Tensor LogProbs(KfacLaplaceState state, nn.Module<Tensor, Tensor> model, ImageDataSet data, double temperature, int chunk = 32) =>
        LogProbs(OutputGaussians(state, model, data, chunk), temperature, monteCarloDraws: 0, generator: null).Pairwise;

    /// <summary>
    /// The linearised predictive's Gaussian over the outputs of every image of <paramref name="data"/> at temperature 1:
    /// the MAP's logits [N, C] and their covariance [N, C, C]. Every predictive, at every temperature (the covariance
    /// times T), is read from these without another pass through the network.
    /// </summary>
    public static (Tensor Mean, Tensor Covariance) OutputGaussians(KfacLaplaceState state, nn.Module<Tensor, Tensor> model, ImageDataSet data, int chunk = 32)
    {
        var means = new List<Tensor>();
        var covariances = new List<Tensor>();
        foreach (var (x, _) in data.Sequential(chunk))
        {
            using var scope = NewDisposeScope();
            var (mean, cov) = Kfac.LinearisedPredictive(state, p =>
            {
                var wrt = ModuleBinding.Bind(model, p);
                return new ModelOutput(model.call(x), wrt);
            }, model);
            means.Add(mean.MoveToOuterDisposeScope());
            covariances.Add(cov.MoveToOuterDisposeScope());
        }
        return (cat(means, 0), cat(covariances, 0));
    }

    /// <summary>
    /// Log predictive probabilities [N, C] from output Gaussians (<see cref="OutputGaussians"/>) with the covariance
    /// scaled by <paramref name="temperature"/>: the pairwise and the per-logit multiclass probit, and (with
    /// <paramref name="monteCarloDraws"/> &gt; 0) Monte Carlo over the same Gaussians with <paramref name="generator"/> (null otherwise).
    /// </summary>
    public static (Tensor Pairwise, Tensor PerLogit, Tensor? MonteCarlo) LogProbs((Tensor Mean, Tensor Covariance) outputs, double temperature,
        int monteCarloDraws, Generator? generator, int chunk = 500)
    {
        if (monteCarloDraws > 0 && generator is null) throw new ArgumentNullException(nameof(generator), "Monte Carlo draws need a generator.");
        var probit = new List<Tensor>();
        var perLogit = new List<Tensor>();
        var monteCarlo = new List<Tensor>();
        var n = outputs.Mean.shape[0];
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            var size = Math.Min(chunk, n - start);
            var mean = outputs.Mean.narrow(0, start, size);
            var cov = outputs.Covariance.narrow(0, start, size) * temperature;
            probit.Add(GlmPredictive.Probit(mean, cov, OutputLikelihood.Categorical).clamp_min(1e-12).log().MoveToOuterDisposeScope());
            perLogit.Add(GlmPredictive.Probit(mean, cov, OutputLikelihood.Categorical, MulticlassProbit.PerLogit).clamp_min(1e-12).log().MoveToOuterDisposeScope());
            if (monteCarloDraws > 0)
                monteCarlo.Add(GlmPredictive.MonteCarlo(mean, cov, OutputLikelihood.Categorical, monteCarloDraws, generator).clamp_min(1e-12).log().MoveToOuterDisposeScope());
        }
        return (cat(probit, 0), cat(perLogit, 0), monteCarloDraws > 0 ? cat(monteCarlo, 0) : null);
    }
}
