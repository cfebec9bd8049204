using Posteriors.Serialization;
using Posteriors.Trees;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Posteriors.Vi;

/// <summary>
/// What every Gaussian VI state holds besides its scale parameters: the mean μ (<see cref="AlgorithmState.Params"/>),
/// the step, the seed of the reparameterisation noise, the last log posterior and NELBO, and the optimizer's moments
/// (fields "&lt;field&gt;.&lt;moment&gt;", e.g. "params.exp_avg").
/// </summary>
public abstract class ViState : AlgorithmState
{
    private protected ViState(StateRecord fields) : base(fields) { }

    /// <summary>The seed of the reparameterisation noise (step t uses the stream (seed, t)).</summary>
    public long Seed => Fields.GetLong(SeedField);

    /// <summary>The NELBO estimate at the last update (NaN before the first).</summary>
    public Tensor Nelbo => Fields.GetTensor("nelbo");

    /// <summary>The fields of a new VI state: μ, the seed, a NaN NELBO, the scale (log σ or packed L) and the optimizer's zero moments of both.</summary>
    internal static StateRecord NewFields(string kind, int kindVersion, ParameterTree mean, long seed, Optim.Optimizer optimizer, string scaleField,
        object scale)
    {
        var fields = AlgorithmState.NewFields(kind, kindVersion, mean);
        fields.Set(SeedField, seed);
        fields.Set("nelbo", TransformExtensions.NotYetEvaluated(mean).DetachFromDisposeScope());
        fields.SetValue(scaleField, scale);
        optimizer.AddMoments(fields, ParamsField);
        optimizer.AddMoments(fields, scaleField);
        return fields;
    }

    /// <summary>
    /// A loaded record in the current layout, checked. Version 1 spelled μ "mean", log σ "logSd" and the log density
    /// "logPosterior", and kept a TorchSharp optimizer's saved bytes ("optimizer"); those of Adam and SGD become the
    /// moment fields of <see cref="Optim.Optimizer"/> (μ's leaves, then the scale's, the order they were handed over in).
    /// </summary>
    internal static StateRecord Upgrade(StateRecord record, string scaleField, Type scaleType)
    {
        ArgumentNullException.ThrowIfNull(record);
        RenameVersion1Fields(record);
        if (record.KindVersion < 2 && record.Has("optimizer"))
        {
            ConvertTorchOptimizer(record, record.GetTensor("optimizer").bytes.ToArray(), new[] { ParamsField, scaleField });
            record.Remove("optimizer");
        }
        return Checked(record, (SeedField, typeof(long)), ("nelbo", typeof(Tensor)), (scaleField, scaleType));
    }

    private static void ConvertTorchOptimizer(StateRecord record, byte[] bytes, string[] optimised)
    {
        if (bytes.Length == 0) return;
        string name;
        using (var peek = new BinaryReader(new MemoryStream(bytes))) name = peek.ReadString();
        var leaves = optimised.SelectMany(record.TensorsOf).ToList();
        var parameters = leaves.Select(t => new Parameter(zeros_like(t), requires_grad: true)).ToList();
        using var optimizer = name switch
        {
            "Adam" => (OptimizerHelper)optim.Adam(parameters),
            "SGD" => optim.SGD(parameters, 0.1, momentum: 0.5),
            _ => throw new InvalidDataException(
                $"The saved {record.Kind} state (version 1) holds the state of a TorchSharp {name} optimizer; only Adam and SGD states convert to this version's moments."),
        };
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes));
            optimizer.load_state_dict(reader);
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"The {name} optimizer state of the saved {record.Kind} state (version 1) could not be read: {e.Message}", e);
        }
        var states = optimizer.state_dict().State;
        var offset = 0;
        foreach (var field in optimised)
        {
            var count = record.TensorsOf(field).Count;
            var slice = states.Skip(offset).Take(count).ToList();
            offset += count;
            if (slice.All(st => st is Adam.State))
            {
                SetMoment(record, field, "exp_avg", slice.Cast<Adam.State>().Select(st => st.exp_avg));
                SetMoment(record, field, "exp_avg_sq", slice.Cast<Adam.State>().Select(st => st.exp_avg_sq));
            }
            else if (slice.All(st => st is SGD.State { momentum_buffer: not null }))
                SetMoment(record, field, "momentum_buffer", slice.Cast<SGD.State>().Select(st => st.momentum_buffer));
        }
    }

    private static void SetMoment(StateRecord record, string field, string moment, IEnumerable<Tensor> values)
    {
        var copies = values.Select(t => t.detach().clone().DetachFromDisposeScope()).ToList();
        var name = Optim.Optimizer.MomentField(field, moment);
        if (record.HasTree(field))
            record.Set(name, new ParameterTree(record.GetTree(field).Names.Zip(copies, (n, t) => new KeyValuePair<string, Tensor>(n, t))));
        else record.Set(name, copies[0]);
    }
}

/// <summary>
/// What the diagonal and dense VI transforms share: the log posterior, the optimizer, T, the initial scale, S,
/// sticking the landing and the noise generators, and the end of an update (optimizer steps on the NELBO's gradient,
/// which is minus the mean of the ELBO's; the NELBO, log density and the samples' auxiliary outputs recorded).
/// </summary>
/// <typeparam name="TState">The VI state.</typeparam>
/// <typeparam name="TBatch">One mini-batch.</typeparam>
public abstract class ViTransform<TState, TBatch> where TState : ViState
{
    private protected ViTransform(LogPosterior<TBatch> logPosterior, Optim.Optimizer optimizer, Schedule? temperature, double initLogSd, int samples,
        bool stickingTheLanding)
    {
        LogPosterior = logPosterior ?? throw new ArgumentNullException(nameof(logPosterior));
        Optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "The number of Monte Carlo samples must be positive.");
        Temperature = (temperature ?? 1.0).Validated("temperature");
        InitLogSd = Check.Finite(initLogSd, nameof(initLogSd));
        Samples = samples;
        StickingTheLanding = stickingTheLanding;
    }

    private protected LogPosterior<TBatch> LogPosterior { get; }
    private protected Optim.Optimizer Optimizer { get; }
    private protected Schedule Temperature { get; }
    private protected double InitLogSd { get; }
    private protected int Samples { get; }
    private protected bool StickingTheLanding { get; }
    private protected Rng Rng { get; } = new();

    /// <summary>
    /// Steps the optimizer on every (field, mean ELBO gradient) pair, then records the NELBO −elbo/S, the log density
    /// value/S and the samples' auxiliary outputs stacked (when every sample had one).
    /// </summary>
    private protected TState Finish(TState next, long step, IEnumerable<(string Field, IReadOnlyList<Tensor> ElboGradient)> gradients, Tensor value,
        Tensor elbo, IReadOnlyList<Tensor> auxes)
    {
        foreach (var (field, gradient) in gradients)
            Optimizer.Step(next.Fields, field, gradient.Select(g => g.mul(-1.0 / Samples)).ToList(), step + 1);
        using (no_grad()) next.Nelbo.copy_(-elbo / Samples);
        return AlgorithmState.Finish(next, value / Samples, auxes.Count == Samples ? stack(auxes.ToArray()) : null);
    }
}
