using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

/// <summary>Drives any of the five samplers through one untyped interface, so each contract test runs on all of them.</summary>
public interface ISamplerRunner
{
    SgmcmcState Init(ParameterTree parameters, long seed);
    SgmcmcState Update(SgmcmcState state, bool inplace);
    void Save(string path, SgmcmcState state);
    SgmcmcState Load(string path);
    /// <summary>Every tensor of the state (parameters, momenta, thermostat).</summary>
    IEnumerable<Tensor> Tensors(SgmcmcState state);
}

internal sealed class Runner<TState>(ITransform<TState, object?> transform, Func<ParameterTree, long, TState> init) : ISamplerRunner
    where TState : SgmcmcState, IPersistentState<TState>
{
    public SgmcmcState Init(ParameterTree parameters, long seed) => init(parameters, seed);
    public SgmcmcState Update(SgmcmcState state, bool inplace) => transform.Update((TState)state, null, inplace);
    public void Save(string path, SgmcmcState state) => StateFile.Save(path, (TState)state);
    public SgmcmcState Load(string path) => StateFile.Load<TState>(path);
    public IEnumerable<Tensor> Tensors(SgmcmcState state) =>
        state.Fields.Fields.SelectMany(f => f.Value switch { Tensor t => new[] { t }, ParameterTree tree => tree.Leaves, _ => Array.Empty<Tensor>() });
}

/// <summary>The samplers with docs/ALGORITHMS.md §7's hyperparameters (SGLD ε = 1e-2; SGHMC/SGNHT/BAOA ε = 0.1, α = 10, σ = √10, m₀ = 0).</summary>
public static class SamplerCases
{
    public static readonly string[] Names = { "Sgld", "Sghmc", "Sgnht", "Baoa", "Sglrw" };

    /// <summary>Every sampler with every noise generator.</summary>
    public static IEnumerable<TestCaseData> NamesAndNoiseStreams() =>
        Names.SelectMany(name => Enum.GetValues<NoiseStream>().Select(stream => new TestCaseData(name, stream)));

    public static ISamplerRunner Build(string name, LogPosterior<object?> logPosterior, Schedule? temperature = null,
        InitialMomenta? momenta = null, NoiseStream noiseStream = StepNoise.Default)
    {
        var sigma = Math.Sqrt(10);
        momenta ??= InitialMomenta.Zero;
        switch (name)
        {
            case "Sgld":
            {
                var t = Sgld.Build(logPosterior, 1e-2, temperature: temperature);
                t.NoiseStream = noiseStream;
                return new Runner<SgldState>(t, t.Init);
            }
            case "Sghmc":
            {
                var t = Sghmc.Build(logPosterior, 0.1, alpha: 10, sigma: sigma, temperature: temperature, momenta: momenta);
                t.NoiseStream = noiseStream;
                return new Runner<SghmcState>(t, t.Init);
            }
            case "Sgnht":
            {
                var t = Sgnht.Build(logPosterior, 0.1, alpha: 10, sigma: sigma, temperature: temperature, momenta: momenta);
                t.NoiseStream = noiseStream;
                return new Runner<SgnhtState>(t, t.Init);
            }
            case "Baoa":
            {
                var t = Baoa.Build(logPosterior, 0.1, alpha: 10, sigma: sigma, temperature: temperature, momenta: momenta);
                t.NoiseStream = noiseStream;
                return new Runner<BaoaState>(t, t.Init);
            }
            case "Sglrw":
            {
                var t = Sglrw.Build(logPosterior, 1e-2, temperature: temperature);
                t.NoiseStream = noiseStream;
                return new Runner<SglrwState>(t, t.Init);
            }
            default: throw new ArgumentException(name);
        }
    }
}

/// <summary>
/// docs/ALGORITHMS.md §7's target: a 2-D Gaussian with random mean and covariance 0.3·AAᵀ + 0.7·I. The log posterior takes a
/// stacked [K, 2] parameter and returns the SUM over chains, so one gradient call advances K independent chains.
/// </summary>
public sealed class GaussianTarget
{
    public GaussianTarget(long seed, int dim = 2)
    {
        var g = new Generator((ulong)seed);
        Mean = randn(new long[] { dim }, dtype: ScalarType.Float64, generator: g);
        var a = randn(new long[] { dim, dim }, dtype: ScalarType.Float64, generator: g);
        Covariance = 0.3 * a.matmul(a.t()) + 0.7 * eye(dim, dtype: ScalarType.Float64);
        Precision = linalg.inv(Covariance);
    }

    public Tensor Mean { get; }
    public Tensor Covariance { get; }
    public Tensor Precision { get; }

    /// <summary>Σₖ log N(θₖ; μ, Σ) (unnormalised) for θ of shape [K, D].</summary>
    public LogPosterior<object?> LogPosterior => (p, _) =>
    {
        var d = p["theta"] - Mean;
        return (d.matmul(Precision) * d).sum() * -0.5;
    };

    /// <summary>KL(N(m, S) ‖ target).</summary>
    public double Kl(Tensor m, Tensor s)
    {
        var dim = m.shape[0];
        var d = (Mean - m).unsqueeze(1);
        var trace = Precision.matmul(s).trace().item<double>();
        var quad = (d.t().matmul(Precision).matmul(d)).item<double>();
        var logDet = linalg.slogdet(Covariance).Item2.item<double>() - linalg.slogdet(s).Item2.item<double>();
        return 0.5 * (trace + quad - dim + logDet);
    }
}

internal static class TensorText
{
    /// <summary>Bitwise equality of values (NaN equals NaN), shapes included.</summary>
    public static bool Same(this Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.to(CPU).allclose(b.to(CPU), rtol: 0, atol: 0, equal_nan: true);

    /// <summary>The values of a small tensor, for assertion messages.</summary>
    public static string Str(this Tensor t) =>
        "[" + string.Join(", ", t.detach().to_type(ScalarType.Float64).to(CPU).contiguous().data<double>().ToArray().Select(v => v.ToString("G4"))) + "]";
}
