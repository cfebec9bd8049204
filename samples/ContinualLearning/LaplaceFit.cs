using Posteriors.Models.Transformers;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Samples.ContinualLearning;

/// <summary>The diagonal Laplace precision of the LoRA parameters on one book (runtime's Laplace, branch gaussian).</summary>
internal static class LaplaceFit
{
    public static ParameterTree DiagonalPrecision(TinyTransformer model, ParameterTree mode, Tensor trainIds, int length, ParameterTree initialPrecision) =>
        throw new NotSupportedException("Laplace-as-prior with λ > 0 needs the runtime's diagonal Laplace (branch gaussian), not merged yet; run with --lambdas 0.");
}
