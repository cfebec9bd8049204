using Posteriors.Curvature;
using Posteriors.Serialization;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Laplace;

/// <summary>
/// The state of a diagonal Laplace approximation (empirical Fisher or GGN): the mode, the diagonal precision over the
/// selected parameters, and what happened when sampling.
/// </summary>
public sealed class DiagLaplaceState : AlgorithmState, IPersistentState<DiagLaplaceState>
{
    private readonly List<string> _warnings = new();

    private DiagLaplaceState(StateRecord fields) : base(fields) { }

    internal static DiagLaplaceState New(string method, ParameterTree parameters, ParameterTree precision)
    {
        var fields = NewFields(Kind, KindVersion, parameters);
        fields.Set("method", method);
        fields.Set("precision", precision);
        return new DiagLaplaceState(fields);
    }

    private protected override AlgorithmState Create(StateRecord fields) => new DiagLaplaceState(fields);

    /// <summary>Which curvature built the precision ("DiagFisher" or "DiagGgn").</summary>
    public string Method => Fields.GetString("method");

    /// <summary>The diagonal precision, a tree over the selected parameters (prior precision plus the curvature of every datum seen).</summary>
    public ParameterTree Precision => Fields.GetTree("precision");

    /// <summary>Warnings raised while sampling (precisions floored); not saved.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <inheritdoc />
    public static string Kind => "DiagLaplace";

    /// <inheritdoc />
    /// <remarks>Version 1 spelled the log density "logPosterior".</remarks>
    public static int KindVersion => 2;

    /// <inheritdoc />
    public static DiagLaplaceState ReadFrom(StateRecord record) =>
        new(Checked(RenameVersion1Fields(record), ("method", typeof(string)), ("precision", typeof(ParameterTree))));

    /// <summary>
    /// <paramref name="count"/> draws θ ~ N(θ̂, T · diag(precision)⁻¹): every leaf of the full tree gets a leading
    /// dimension <paramref name="count"/> (a [out, in] weight comes back [count, out, in]); leaves outside the subset
    /// repeat the mode. Precisions below <paramref name="minPrecision"/> are raised to it and reported in
    /// <see cref="Warnings"/>.
    /// </summary>
    /// <param name="count">Number of draws.</param>
    /// <param name="seed">Seed of the draws.</param>
    /// <param name="temperature">T: σ = sqrt(T / precision). With T = 1 the draws follow the Bayesian posterior, since the precision sums the curvature of every datum.</param>
    /// <param name="minPrecision">The floor applied to near-zero precisions (an over-fitted mode).</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    public ParameterTree Sample(long count, long seed = 0, double temperature = 1, double minPrecision = 1e-8)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The number of draws must be positive.");
        Check.NonNegative(temperature, nameof(temperature));
        Check.Positive(minPrecision, nameof(minPrecision));
        using var scope = NewDisposeScope();
        var sd = Precision.Map((name, p) =>
        {
            var low = (p < minPrecision).sum().item<long>();
            if (low > 0) _warnings.Add($"{low} precision value(s) of parameter '{name}' were below {minPrecision} and were floored to it before sampling.");
            return (temperature / p.clamp_min(minPrecision)).sqrt();
        });
        var generator = new Rng().For(seed, 0, Params.Device);
        var draws = DiagNormal.Sample(Params.Select(Precision.Names), sd, count, generator);
        return Expand(Params, count).Insert(draws).Map(t => t.contiguous()).MoveToOuterDisposeScope();
    }

    internal static ParameterTree Expand(ParameterTree parameters, long count) =>
        parameters.Map(t => t.detach().unsqueeze(0).expand(new[] { count }.Concat(t.shape).ToArray()));
}
