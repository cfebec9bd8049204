using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study.Methods;

/// <summary>
/// Diagonal Laplace around the seed's MAP estimate over the last layer (fc2; <c>--laplace-layers dense</c> adds fc1; the
/// other layers stay at the mode: with the weak N(0, 1) prior, hidden weights of inactive units have almost no curvature and
/// sampling them at variance ≈ 1 wrecks the network, so last-layer Laplace is the robust default),
/// with the empirical Fisher or the GGN as curvature and the N(0, σ²) prior's precision as the initial one.
/// The curvature is summed over up to <see cref="CurvatureExamples"/> training examples and scaled to N. Temperature
/// acts at prediction time: variance τ / precision. The predictive either averages the network at sampled weights,
/// or (linearised) averages softmax over logit draws from the linearised model's Gaussian N(f(x; θ̂), J Σ Jᵀ).
/// </summary>
public sealed class DiagLaplaceMethod : IStudyMethod
{
    /// <summary>The parameters the approximation covers for <c>--laplace-layers</c> "last" and "dense".</summary>
    public static string[] SubsetFor(string layers) => layers switch
    {
        "dense" => new[] { "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" },
        "all" => new[] { "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias" },
        _ => new[] { "fc2.weight", "fc2.bias" },
    };

    /// <summary>Most training examples the curvature is summed over (then scaled by N / n).</summary>
    public const int CurvatureExamples = 2048;

    private readonly bool _ggn;
    private readonly bool _linearised;

    /// <summary>The GGN or empirical-Fisher variant, with the sampled or the linearised predictive.</summary>
    public DiagLaplaceMethod(bool ggn, bool linearised)
    {
        _ggn = ggn;
        _linearised = linearised;
    }

    /// <inheritdoc />
    public string Name => $"laplace-{(_ggn ? "ggn" : "fisher")}{(_linearised ? "-lin" : "")}";

    /// <inheritdoc />
    public string Description =>
        $"diagonal {(_ggn ? "GGN" : "empirical-Fisher")} Laplace at the MAP (dense layers), variance τ/precision, {(_linearised ? "linearised" : "sampled-weights")} predictive";

    /// <inheritdoc />
    public bool Tempered => true;

    /// <inheritdoc />
    public long Steps(StudyContext context) => Math.Min(context.N, CurvatureExamples) / context.BatchSize;

    /// <inheritdoc />
    public MethodOutput Run(StudyContext context, double? tau, int seed, Action<long, string> progress)
    {
        var mode = context.Map(seed, (_, s) => progress(0, "MAP: " + s));
        var subset = SubsetFor(context.Options.LaplaceLayers);
        var precision = context.Cached($"laplace-{(_ggn ? "ggn" : "fisher")}-{seed}", () => Precision(context, mode, subset, progress));
        var variance = precision.Map(p => tau!.Value / p);
        return _linearised ? Linearised(context, mode, variance, seed) : Sampled(context, mode, variance, subset, seed);
    }

    private ParameterTree Precision(StudyContext context, ParameterTree mode, string[] subset, Action<long, string> progress)
    {
        var prior = 1 / (context.Posterior.PriorSd * context.Posterior.PriorSd);
        var model = ForwardModel(context);
        ITransform<DiagLaplaceState, (Tensor X, Tensor Y)> transform = _ggn
            ? DiagGgn.Build(model, initPrecision: 0.0, subset: subset, module: context.Model)
            : DiagFisher.Build(model.PerDatumLogDensity(), initPrecision: 0.0, subset: subset, module: context.Model);
        var state = transform.Init(mode);
        var n = Math.Min(context.N, CurvatureExamples);
        var data = context.Train.Take(n);
        long step = 0;
        foreach (var batch in data.Sequential(context.BatchSize))
        {
            using (NewDisposeScope()) state = transform.Update(state, batch, inplace: true);
            progress(++step, "curvature");
        }
        // Σ over n examples, scaled to the N of the posterior, plus the prior's precision.
        var scale = (double)context.N / n;
        return state.Precision.Map(p => p * scale + prior);
    }

    /// <summary>The CNN as an <see cref="IForwardModel{TBatch}"/>: logits through the bound module, categorical likelihood.</summary>
    public static ForwardModel<(Tensor X, Tensor Y)> ForwardModel(StudyContext context) => new(
        (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(context.Model, p);
            return new ModelOutput(context.Model.call(batch.X), wrt);
        },
        batch => batch.Y, OutputLikelihood.Categorical);

    private static MethodOutput Sampled(StudyContext context, ParameterTree mode, ParameterTree variance, string[] subset, int seed)
    {
        var generator = new Rng().For(seed, 0, mode.Device);
        var members = new List<ParameterTree>();
        for (var s = 0; s < context.PredictiveDraws; s++)
            members.Add(mode.Insert(DiagNormal.Sample(mode.Select(subset), variance.Map(v => v.sqrt()), generator)));
        return context.Predict(members);
    }

    private static MethodOutput Linearised(StudyContext context, ParameterTree mode, ParameterTree variance, int seed)
    {
        var generator = new Rng().For(seed, 0, mode.Device);
        Tensor Predict(Models.Data.ImageDataSet data)
        {
            var parts = new List<Tensor>();
            foreach (var (x, _) in data.Sequential(50))
            {
                using var scope = NewDisposeScope();
                var (mean, cov) = LinearisedPredictive.Compute(p =>
                {
                    var wrt = ModuleBinding.Bind(context.Model, p);
                    return new ModelOutput(context.Model.call(x), wrt);
                }, mode, variance, context.Model);
                var k = mean.shape[1];
                // Logit draws f = μ + L ξ, L the Cholesky factor of the (jittered) covariance; log of the mean softmax.
                var chol = linalg.cholesky(cov + 1e-6 * eye(k, dtype: cov.dtype, device: cov.device));
                var xi = randn(new long[] { context.PredictiveDraws, mean.shape[0], k, 1 }, dtype: mean.dtype, device: mean.device, generator: generator);
                var logits = mean.unsqueeze(0) + Checked.MatMul(chol.unsqueeze(0), xi).squeeze(-1);
                parts.Add(nn.functional.log_softmax(logits, 2).MoveToOuterDisposeScope());
            }
            return cat(parts, 1);   // [S, N, C]: each logit draw acts as one member
        }
        return new MethodOutput(Predict(context.Test), Predict(context.Ood));
    }
}
