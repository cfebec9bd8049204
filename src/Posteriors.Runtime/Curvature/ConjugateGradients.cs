using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Curvature;

/// <summary>The result of <see cref="ConjugateGradients.Solve"/>.</summary>
/// <param name="Solution">x with (A + λI) x ≈ b.</param>
/// <param name="Iterations">Iterations run.</param>
/// <param name="ResidualNorm">‖b − (A + λI) x‖ at the end.</param>
/// <param name="Converged">Whether the residual fell below the tolerance.</param>
public sealed record ConjugateGradientsResult(ParameterTree Solution, int Iterations, double ResidualNorm, bool Converged);

/// <summary>Conjugate gradients on parameter trees, for (A + λI) x = b with A symmetric positive semi-definite given as a product.</summary>
public static class ConjugateGradients
{
    /// <summary>Solves (A + <paramref name="damping"/> I) x = <paramref name="b"/>.</summary>
    /// <param name="matrixVectorProduct">v ↦ A v (e.g. a Fisher–, GGN– or negative Hessian–vector product).</param>
    /// <param name="b">The right-hand side.</param>
    /// <param name="damping">λ ≥ 0 added to the diagonal.</param>
    /// <param name="maxIterations">At most this many iterations (default: the number of elements).</param>
    /// <param name="tolerance">Stop when ‖r‖ ≤ tolerance · ‖b‖.</param>
    /// <param name="x0">The starting point (default zeros).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public static ConjugateGradientsResult Solve(Func<ParameterTree, ParameterTree> matrixVectorProduct, ParameterTree b,
        double damping = 0, int? maxIterations = null, double tolerance = 1e-10, ParameterTree? x0 = null)
    {
        ArgumentNullException.ThrowIfNull(matrixVectorProduct);
        ArgumentNullException.ThrowIfNull(b);
        Check.NonNegative(damping, nameof(damping));
        Check.NonNegative(tolerance, nameof(tolerance));
        var max = maxIterations ?? (int)Math.Min(int.MaxValue, b.NumberOfElements);
        if (max <= 0) throw new ArgumentOutOfRangeException(nameof(maxIterations), maxIterations, "The number of iterations must be positive.");
        if (x0 is not null) b.EnsureSameStructure(x0, nameof(x0));

        using var scope = NewDisposeScope();
        ParameterTree Apply(ParameterTree v) => damping == 0 ? matrixVectorProduct(v) : matrixVectorProduct(v).Add(v, damping);
        var x = x0?.Clone() ?? b.ZerosLike();
        var r = x0 is null ? b.Clone() : b.Add(Apply(x), -1);
        var p = r.Clone();
        var rr = r.Dot(r).to_type(ScalarType.Float64).item<double>();
        var threshold = tolerance * Math.Sqrt(b.Dot(b).to_type(ScalarType.Float64).item<double>());
        var iterations = 0;
        while (Math.Sqrt(rr) > threshold && iterations < max)
        {
            using var step = NewDisposeScope();
            var ap = Apply(p);
            var pap = p.Dot(ap).to_type(ScalarType.Float64).item<double>();
            if (!(pap > 0)) break; // A + λI is not positive definite along p: stop at the best iterate so far.
            var alpha = rr / pap;
            var xNext = x.Add(p, alpha);
            var rNext = r.Add(ap, -alpha);
            var rrNext = rNext.Dot(rNext).to_type(ScalarType.Float64).item<double>();
            var pNext = rNext.Add(p, rrNext / rr);
            x = xNext.MoveToOuterDisposeScope();
            r = rNext.MoveToOuterDisposeScope();
            p = pNext.MoveToOuterDisposeScope();
            rr = rrNext;
            iterations++;
        }
        return new ConjugateGradientsResult(x.MoveToOuterDisposeScope(), iterations, Math.Sqrt(rr), Math.Sqrt(rr) <= threshold);
    }
}
