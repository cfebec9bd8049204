using System.Globalization;

namespace Posteriors.Distributed;

/// <summary>
/// A model as a grain can rebuild it on any silo: the name a <see cref="Models.ModelCatalog"/> knows it by and its settings
/// (sizes, seeds, data options) as text. Everything a silo needs to reconstruct the log posterior and the data stream
/// is in here, so where a grain runs never changes what it computes.
/// </summary>
/// <param name="Name">The registered factory's name (e.g. <c>mlp-synthetic</c>).</param>
/// <param name="Settings">The factory's settings; unknown keys are the factory's to reject.</param>
[GenerateSerializer, Immutable]
public sealed record ModelSpec(string Name, Dictionary<string, string> Settings)
{
    /// <summary>A spec with settings given as (key, value) pairs formatted with the invariant culture.</summary>
    public static ModelSpec Of(string name, params (string Key, object Value)[] settings) =>
        new(name, settings.ToDictionary(s => s.Key, s => Convert.ToString(s.Value, CultureInfo.InvariantCulture) ?? ""));

    /// <summary>An integer setting, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ArgumentException">The value is not an integer.</exception>
    public long Long(string key, long fallback) =>
        !Settings.TryGetValue(key, out var v) ? fallback
        : long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x
        : throw new ArgumentException($"Setting '{key}' of model '{Name}' must be an integer; got '{v}'.", nameof(Settings));

    /// <summary>A real setting, or <paramref name="fallback"/> when absent.</summary>
    /// <exception cref="ArgumentException">The value is not a number.</exception>
    public double Double(string key, double fallback) =>
        !Settings.TryGetValue(key, out var v) ? fallback
        : double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x
        : throw new ArgumentException($"Setting '{key}' of model '{Name}' must be a number; got '{v}'.", nameof(Settings));

    /// <summary>A text setting, or <paramref name="fallback"/> when absent.</summary>
    public string Text(string key, string fallback) => Settings.TryGetValue(key, out var v) ? v : fallback;

    /// <summary>Value equality over the settings too (records compare dictionaries by reference).</summary>
    public bool SameAs(ModelSpec other) =>
        other is not null && Name == other.Name && Settings.Count == other.Settings.Count &&
        Settings.All(kv => other.Settings.TryGetValue(kv.Key, out var v) && v == kv.Value);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}({string.Join(", ", Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"))})";
}

/// <summary>
/// A step-size or temperature schedule that can cross the wire: constant (<paramref name="End"/> null) or cosine
/// annealing from <paramref name="Start"/> to <paramref name="End"/> over <paramref name="Steps"/> steps.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ScheduleSpec(double Start, double? End = null, long Steps = 0)
{
    /// <summary>A constant.</summary>
    public static implicit operator ScheduleSpec(double value) => new(value);

    /// <summary>The runtime's schedule.</summary>
    public Schedule ToSchedule() => End is { } end ? Schedule.Cosine(Start, end, Steps) : Schedule.Constant(Start);
}

/// <summary>The samplers a member can run: those the ensemble API steps chain by chain.</summary>
public enum SamplerKind
{
    /// <summary>SGHMC (the ensemble's default sampler).</summary>
    Sghmc,

    /// <summary>SGLD.</summary>
    Sgld,

    /// <summary>SGNHT (each member with its own thermostat).</summary>
    Sgnht,

    /// <summary>BAOA.</summary>
    Baoa,

    /// <summary>SGLRW.</summary>
    Sglrw,
}

/// <summary>
/// The sampler of every member of a run and its hyperparameters (momenta start at zero, as in the ensemble). Build one
/// with <see cref="Sghmc"/>, <see cref="Sgld"/>, <see cref="Sgnht"/>, <see cref="Baoa"/> or <see cref="Sglrw"/>; a
/// hyperparameter the sampler does not have must keep its neutral value (α 0, σ 1, β 0, ξ unset), or
/// <see cref="Validated"/> refuses the spec rather than ignore it.
/// </summary>
/// <param name="Lr">Step size ε.</param>
/// <param name="Alpha">Friction α (SGHMC, SGNHT, BAOA).</param>
/// <param name="Sigma">Momentum scale σ (SGHMC, SGNHT, BAOA).</param>
/// <param name="Temperature">Temperature T.</param>
/// <param name="Beta">Gradient-noise correction β (SGLD, SGHMC, SGNHT).</param>
/// <param name="Kind">The sampler.</param>
/// <param name="Xi">SGNHT's initial thermostat ξ (default α).</param>
/// <param name="NoiseStream">
/// The generator of the members' step noise (<see cref="Posteriors.NoiseStream"/>); a member's checkpoint records its own,
/// so a member resumed from a checkpoint keeps the generator it started with.
/// </param>
[GenerateSerializer, Immutable]
public sealed record SamplerSpec(ScheduleSpec Lr, double Alpha, double Sigma, ScheduleSpec Temperature, double Beta = 0.0,
    SamplerKind Kind = SamplerKind.Sghmc, double? Xi = null, NoiseStream NoiseStream = NoiseStream.PhiloxXoshiro)
{
    /// <summary>SGHMC.</summary>
    public static SamplerSpec Sghmc(ScheduleSpec lr, double alpha, double sigma, ScheduleSpec temperature, double beta = 0.0) =>
        new(lr, alpha, sigma, temperature, beta);

    /// <summary>SGLD.</summary>
    public static SamplerSpec Sgld(ScheduleSpec lr, ScheduleSpec temperature, double beta = 0.0) =>
        new(lr, Alpha: 0, Sigma: 1, temperature, beta, SamplerKind.Sgld);

    /// <summary>SGNHT; the thermostat starts at <paramref name="xi"/> (default <paramref name="alpha"/>).</summary>
    public static SamplerSpec Sgnht(ScheduleSpec lr, double alpha, double sigma, ScheduleSpec temperature, double beta = 0.0, double? xi = null) =>
        new(lr, alpha, sigma, temperature, beta, SamplerKind.Sgnht, xi);

    /// <summary>BAOA.</summary>
    public static SamplerSpec Baoa(ScheduleSpec lr, double alpha, double sigma, ScheduleSpec temperature) =>
        new(lr, alpha, sigma, temperature, Kind: SamplerKind.Baoa);

    /// <summary>SGLRW.</summary>
    public static SamplerSpec Sglrw(ScheduleSpec lr, ScheduleSpec temperature) =>
        new(lr, Alpha: 0, Sigma: 1, temperature, Kind: SamplerKind.Sglrw);

    /// <summary>Checks that every hyperparameter set applies to <see cref="Kind"/> (the samplers check their ranges when built).</summary>
    /// <exception cref="ArgumentException">A hyperparameter the sampler does not have is set; the message names it and its value.</exception>
    public SamplerSpec Validated()
    {
        ArgumentNullException.ThrowIfNull(Lr);
        ArgumentNullException.ThrowIfNull(Temperature);
        Check.Defined(Kind, nameof(Kind));
        Check.Defined(NoiseStream, nameof(NoiseStream));
        var momenta = Kind is SamplerKind.Sghmc or SamplerKind.Sgnht or SamplerKind.Baoa;
        if (!momenta && Alpha != 0) throw NotApplicable(nameof(Alpha), Alpha, "0");
        if (!momenta && Sigma != 1) throw NotApplicable(nameof(Sigma), Sigma, "1");
        if (Kind is SamplerKind.Baoa or SamplerKind.Sglrw && Beta != 0) throw NotApplicable(nameof(Beta), Beta, "0");
        if (Kind != SamplerKind.Sgnht && Xi is { } xi) throw NotApplicable(nameof(Xi), xi, "unset");
        return this;
    }

    private ArgumentException NotApplicable(string name, double value, string neutral) =>
        new($"{Kind} has no {name}: SamplerSpec.{name} must be {neutral} for it; got {value.ToString(CultureInfo.InvariantCulture)}.", name);
}


/// <summary>
/// One member of a run: the model, the sampler, the run's seed (noise stream <paramref name="Member"/> of it, as in the
/// single-process ensemble), how long it runs and how often it checkpoints.
/// </summary>
/// <param name="Run">The run's name: with the member index it names the grain and its checkpoint.</param>
/// <param name="Member">The member index k (its noise stream and initialisation).</param>
/// <param name="Model">The model.</param>
/// <param name="Sampler">The sampler.</param>
/// <param name="Seed">The run's seed: mini-batch order and noise.</param>
/// <param name="Steps">Total number of steps.</param>
/// <param name="CheckpointEvery">C: the state is written to grain storage every C steps (and at the end).</param>
[GenerateSerializer, Immutable]
public sealed record ChainSpec(string Run, int Member, ModelSpec Model, SamplerSpec Sampler, long Seed, long Steps, long CheckpointEvery)
{
    /// <summary>The grain key of this member.</summary>
    public string Key => ChainKey(Run, Member);

    /// <summary>The grain key of member <paramref name="member"/> of <paramref name="run"/>.</summary>
    public static string ChainKey(string run, int member) => $"{run}/{member}";

    /// <summary>Checks every field, naming the bad one.</summary>
    /// <exception cref="ArgumentException">A field is out of range.</exception>
    public ChainSpec Validated()
    {
        if (string.IsNullOrWhiteSpace(Run) || Run.Contains('/'))
            throw new ArgumentException($"The run name must be non-empty and contain no '/'; got '{Run}'.", nameof(Run));
        if (Member < 0) throw new ArgumentOutOfRangeException(nameof(Member), Member, "The member index must be non-negative.");
        if (Steps < 0) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "The number of steps must be non-negative.");
        if (CheckpointEvery < 1)
            throw new ArgumentOutOfRangeException(nameof(CheckpointEvery), CheckpointEvery, "Checkpoints must be at least one step apart.");
        ArgumentNullException.ThrowIfNull(Model);
        ArgumentNullException.ThrowIfNull(Sampler);
        Sampler.Validated();
        return this;
    }

    /// <summary>Whether <paramref name="other"/> describes the same computation (a restarted coordinator may reattach).</summary>
    public bool SameAs(ChainSpec other) =>
        other is not null && Run == other.Run && Member == other.Member && Model.SameAs(other.Model) && Sampler == other.Sampler &&
        Seed == other.Seed && Steps == other.Steps && CheckpointEvery == other.CheckpointEvery;
}

/// <summary>Where a member stands.</summary>
/// <param name="Member">The member index.</param>
/// <param name="Step">Steps done.</param>
/// <param name="LogPosterior">The last log posterior (NaN before the first step).</param>
/// <param name="CheckpointStep">The step of the last checkpoint written.</param>
/// <param name="Silo">The silo the member runs on.</param>
/// <param name="RestoredFrom">The checkpoint step this activation resumed from, or −1 when it started the member.</param>
[GenerateSerializer, Immutable]
public sealed record ChainProgress(int Member, long Step, double LogPosterior, long CheckpointStep, string Silo, long RestoredFrom);
