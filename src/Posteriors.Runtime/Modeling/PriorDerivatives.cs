using static TorchSharp.torch;

namespace Posteriors.Modeling;

/// <summary>
/// The closed-form derivatives of one prior term Σ log p(θ | arguments) (<see cref="Priors.Differentiate"/>): with
/// respect to θ (in θ's own, constrained coordinates: the caller pulls it back through the constraint's bijector) and
/// with respect to each tensor argument (a parent parameter of a hierarchical prior), summed to that argument's shape.
/// Computed without autograd; an argument's gradient is computed when it is asked for.
/// </summary>
public sealed class PriorDerivatives
{
    private readonly Tensor _theta;
    private readonly Distribution _distribution;
    private readonly bool _truncated;
    private readonly Dictionary<string, PriorArgument> _arguments;
    private Tensor? _gradient;

    internal PriorDerivatives(Tensor theta, Distribution distribution, bool truncated, Dictionary<string, PriorArgument> arguments)
    {
        _theta = theta;
        _distribution = distribution;
        _truncated = truncated;
        _arguments = arguments;
    }

    /// <summary>∂/∂θ of the summed log density, shaped like θ.</summary>
    public Tensor Gradient => _gradient ??= ThetaGradient();

    /// <summary>∂/∂loc, shaped like the loc tensor.</summary>
    /// <exception cref="InvalidOperationException">loc was not given as a tensor.</exception>
    public Tensor LocGradient => ArgumentGradient("loc");

    /// <summary>∂/∂scale, shaped like the scale tensor.</summary>
    /// <exception cref="InvalidOperationException">scale was not given as a tensor.</exception>
    public Tensor ScaleGradient => ArgumentGradient("scale");

    /// <summary>∂/∂df, shaped like the df tensor.</summary>
    /// <exception cref="InvalidOperationException">df was not given as a tensor.</exception>
    public Tensor DfGradient => ArgumentGradient("df");

    /// <summary>∂/∂shape, shaped like the shape tensor.</summary>
    /// <exception cref="InvalidOperationException">shape was not given as a tensor.</exception>
    public Tensor ShapeGradient => ArgumentGradient("shape");

    /// <summary>∂/∂rate, shaped like the rate tensor.</summary>
    /// <exception cref="InvalidOperationException">rate was not given as a tensor.</exception>
    public Tensor RateGradient => ArgumentGradient("rate");

    /// <summary>∂/∂low, shaped like the low tensor.</summary>
    /// <exception cref="InvalidOperationException">low was not given as a tensor.</exception>
    public Tensor LowGradient => ArgumentGradient("low");

    /// <summary>∂/∂high, shaped like the high tensor.</summary>
    /// <exception cref="InvalidOperationException">high was not given as a tensor.</exception>
    public Tensor HighGradient => ArgumentGradient("high");

    /// <summary>∂/∂alpha, shaped like the alpha tensor.</summary>
    /// <exception cref="InvalidOperationException">alpha was not given as a tensor.</exception>
    public Tensor AlphaGradient => ArgumentGradient("alpha");

    /// <summary>∂/∂beta, shaped like the beta tensor.</summary>
    /// <exception cref="InvalidOperationException">beta was not given as a tensor.</exception>
    public Tensor BetaGradient => ArgumentGradient("beta");

    /// <summary>∂/∂concentration, shaped like the concentration tensor.</summary>
    /// <exception cref="InvalidOperationException">concentration was not given as a tensor.</exception>
    public Tensor ConcentrationGradient => ArgumentGradient("concentration");

    private Tensor Arg(string name) => _arguments[name].AsTensor(_theta);

    private Tensor ThetaGradient()
    {
        using var _ = no_grad();
        var theta = _theta;
        if (_arguments.Values.All(a => a.Tensor is null) && _distribution is Distribution.Flat or Distribution.Normal
                or Distribution.Laplace or Distribution.Cauchy or Distribution.StudentT)
        {
            // Constant arguments: the scalar closed forms, no broadcasting.
            var values = Priors.ArgumentNames(_distribution).Select(n => _arguments[n].Value).Concat(new double[3]).ToArray();
            return Priors.Gradient(theta, _distribution, values[0], values[1], values[2]);
        }
        Tensor g;
        switch (_distribution)
        {
            case Distribution.Flat:
            case Distribution.Uniform:
                return zeros_like(theta);
            case Distribution.Normal:
                g = (Arg("loc") - theta) / Arg("scale").square();
                break;
            case Distribution.Laplace:
                g = (Arg("loc") - theta).sign() / Arg("scale");
                break;
            case Distribution.Cauchy:
            {
                var (z, b) = ((theta - Arg("loc")) / Arg("scale"), Arg("scale"));
                g = z * -2 / (b * (z.square() + 1));
                break;
            }
            case Distribution.StudentT:
            {
                var (nu, c) = (Arg("df"), Arg("scale"));
                var z = (theta - Arg("loc")) / c;
                g = -(nu + 1) * z / (c * (nu + z.square()));
                break;
            }
            case Distribution.HalfNormal:
                g = -theta / Arg("scale").square();
                break;
            case Distribution.HalfCauchy:
                g = theta * -2 / (Arg("scale").square() + theta.square());
                break;
            case Distribution.LogNormal:
                g = -((theta.log() - Arg("loc")) / Arg("scale").square() + 1) / theta;
                break;
            case Distribution.Gamma:
                g = (Arg("shape") - 1) / theta - Arg("rate");
                break;
            case Distribution.Exponential:
                g = -Arg("rate");
                break;
            case Distribution.Beta:
                g = (Arg("alpha") - 1) / theta - (Arg("beta") - 1) / (1 - theta);
                break;
            case Distribution.Dirichlet:
                g = (Arg("concentration") - 1) / theta;
                break;
            default: // LkjCholesky: Σᵢ (K − i + 2η − 3) log Lᵢᵢ over rows i ≥ 1 (0-based)
            {
                var k = theta.shape[^1];
                var rows = arange(k, dtype: theta.dtype, device: theta.device);
                var exponents = (k - 3 + 2 * Arg("concentration")) - rows;
                var diagonal = (exponents / theta.diagonal(0, -2, -1)).index_fill(-1, tensor(new long[] { 0 }, device: theta.device), 0);
                return diag_embed(diagonal);
            }
        }
        return g.expand(theta.shape).contiguous();
    }

    private Tensor ArgumentGradient(string name)
    {
        if (!_arguments.TryGetValue(name, out var argument) || argument.Tensor is not { } target)
            throw new InvalidOperationException(
                $"{_distribution}: the gradient with respect to '{name}' exists only for an argument given as a tensor (here: {(_arguments.TryGetValue(name, out var a) ? a.ToString() : "not an argument")}).");
        using var _ = no_grad();
        var theta = _theta;
        Tensor g;
        switch (_distribution, name)
        {
            case (Distribution.Normal, "loc"):
                g = (theta - Arg("loc")) / Arg("scale").square();
                break;
            case (Distribution.Normal, _):
            {
                var b = Arg("scale");
                g = (((theta - Arg("loc")) / b).square() - 1) / b;
                break;
            }
            case (Distribution.Laplace, "loc"):
                g = (theta - Arg("loc")).sign() / Arg("scale");
                break;
            case (Distribution.Laplace, _):
            {
                var b = Arg("scale");
                g = ((theta - Arg("loc")).abs() / b - 1) / b;
                break;
            }
            case (Distribution.Cauchy, _):
            {
                var b = Arg("scale");
                var z = (theta - Arg("loc")) / b;
                var q = z.square();
                g = name == "loc" ? 2 * z / (b * (q + 1)) : (2 * q / (q + 1) - 1) / b;
                break;
            }
            case (Distribution.StudentT, _):
            {
                var (nu, c) = (Arg("df"), Arg("scale"));
                var z = (theta - Arg("loc")) / c;
                var q = z.square();
                g = name switch
                {
                    "loc" => (nu + 1) * z / (c * (nu + q)),
                    "scale" => ((nu + 1) * q / (nu + q) - 1) / c,
                    _ => 0.5 * (((nu + 1) / 2).digamma() - (nu / 2).digamma() - 1 / nu - (q / nu).log1p() + (nu + 1) * q / (nu * (nu + q))),
                };
                break;
            }
            case (Distribution.HalfNormal, _):
            {
                var s = Arg("scale");
                g = (theta.square() / s.square() - 1) / s;
                break;
            }
            case (Distribution.HalfCauchy, _):
            {
                var s = Arg("scale");
                var t2 = theta.square();
                g = 2 * t2 / (s * (s.square() + t2)) - 1 / s;
                break;
            }
            case (Distribution.LogNormal, _):
            {
                var b = Arg("scale");
                var z = (theta.log() - Arg("loc")) / b;
                g = name == "loc" ? z / b : (z.square() - 1) / b;
                break;
            }
            case (Distribution.Gamma, "shape"):
                g = Arg("rate").log() - Arg("shape").digamma() + theta.log();
                break;
            case (Distribution.Gamma, _):
                g = Arg("shape") / Arg("rate") - theta;
                break;
            case (Distribution.Exponential, _):
                g = 1 / Arg("rate") - theta;
                break;
            case (Distribution.Uniform, _):
                g = (name == "low" ? 1 : -1) / (Arg("high") - Arg("low"));
                break;
            case (Distribution.Beta, _):
            {
                var (a, b) = (Arg("alpha"), Arg("beta"));
                g = (name == "alpha" ? theta.log() : (-theta).log1p()) - (name == "alpha" ? a : b).digamma() + (a + b).digamma();
                break;
            }
            case (Distribution.Dirichlet, _):
            {
                var c = Arg("concentration").expand(theta.shape);
                g = theta.log() - c.digamma() + c.sum(-1, keepdim: true).digamma();
                break;
            }
            default: // (LkjCholesky, concentration): 2 Σ log Lᵢᵢ − ∂ log c_K(η)/∂η
            {
                var k = theta.shape[^1];
                var logDiagonal = theta.diagonal(0, -2, -1).log().sum(-1);
                g = 2 * logDiagonal - Priors.LkjLogNormaliserDerivative(Arg("concentration"), k);
                // η is one number for every factor (sampling reads it as one)
                return g.sum().reshape(target.shape).to_type(target.dtype);
            }
        }
        if (_truncated) g = g + TruncationGradient(name);
        return SumTo(g, target);
    }

    /// <summary>
    /// ∂/∂argument of −log P(θ &gt; 0), the normaliser of a real-line prior truncated to θ &gt; 0, per element:
    /// with z₀ = loc/scale and h = g(z₀)/G(z₀) (standard density over CDF), −h/scale for loc and h z₀/scale for scale.
    /// StudentT is only truncated at loc 0, where the normaliser is ½ whatever the scale and df.
    /// </summary>
    private Tensor TruncationGradient(string name)
    {
        if (_distribution == Distribution.StudentT) return zeros(Array.Empty<long>(), dtype: _theta.dtype, device: _theta.device);
        var b = Arg("scale");
        var z = Arg("loc") / b;
        var h = _distribution switch
        {
            Distribution.Normal => (-0.5 * z.square()).exp() / (Math.Sqrt(2 * Math.PI) * special.ndtr(z)),
            Distribution.Laplace => 0.5 * (-z.abs()).exp() / where(z >= 0, 1 - 0.5 * (-z.abs()).exp(), 0.5 * (-z.abs()).exp()),
            _ /* Cauchy */ => 1 / (Math.PI * (1 + z.square()) * (0.5 + z.atan() / Math.PI)),
        };
        return name == "loc" ? -h / b : h * z / b;
    }

    /// <summary>An elementwise gradient (broadcast to θ's shape) summed down to the shape of the argument tensor.</summary>
    private Tensor SumTo(Tensor g, Tensor target)
    {
        var full = g.expand(_theta.shape);
        while (full.dim() > target.dim()) full = full.sum(dim: 0);
        for (var i = 0; i < target.dim(); i++)
            if (target.shape[i] == 1 && full.shape[i] != 1) full = full.sum(i, keepdim: true);
        // Dense and fresh, so that callers may scale it in place.
        return full.to_type(target.dtype).contiguous();
    }
}
