using Posteriors.Curvature;
using Posteriors.Laplace;
using Posteriors.Models.Text;
using Posteriors.Models.Transformers;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>The diagonal Laplace precision of the LoRA parameters on one book, with the runtime's empirical-Fisher Laplace.</summary>
internal static class LaplaceFit
{
    /// <summary>
    /// Adds Σ over the book's windows of (∇ log p(window))² at <paramref name="mode"/> to <paramref name="initialPrecision"/>.
    /// A datum is one window of <paramref name="length"/> predicted characters (its log-likelihood is the sum over them), and
    /// the windows tile the book once, so the Fisher is on the scale of the whole book, like the prior it becomes.
    /// </summary>
    public static ParameterTree DiagonalPrecision(TinyTransformer model, ParameterTree mode, Tensor trainIds, int length, ParameterTree initialPrecision)
    {
        PerDatumLogDensity<Tensor> perWindow = (p, batch) =>
        {
            var wrt = ModuleBinding.Bind(model, p);
            return new LogDensityResult(CharLanguageModel.TokenLogLikelihood(model, batch).sum(new long[] { 1 }), wrt: wrt);
        };
        var laplace = DiagFisher.Build(perWindow, initPrecision: initialPrecision);
        var state = laplace.Init(mode);
        var windows = TextEpisodes.AllWindows(trainIds, length);
        const int chunk = 32;
        for (long s = 0; s < windows.shape[0]; s += chunk)
        {
            using var scope = NewDisposeScope();
            state = laplace.Update(state, windows.narrow(0, s, Math.Min(chunk, windows.shape[0] - s)), inplace: true);
        }
        return state.Precision.Clone();
    }
}
