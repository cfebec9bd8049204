using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Traces;

/// <summary>
/// Collects samples from a run: drops the first <see cref="BurnIn"/> steps, keeps every <see cref="Thin"/>-th step
/// after that, holds the kept samples in memory or streams them to a file (for models too large to keep many copies
/// of), and keeps their running moments.
/// </summary>
public sealed class Trace : IDisposable
{
    private readonly List<ParameterTree>? _samples;
    private readonly string? _path;
    private FileStream? _file;
    private BinaryWriter? _writer;
    private ParameterTree? _template;

    /// <summary>Creates a trace.</summary>
    /// <param name="burnIn">Steps to drop: a state with <c>Step ≤ burnIn</c> is not kept (≥ 0).</param>
    /// <param name="thin">Keep every thin-th step after the burn-in (≥ 1).</param>
    /// <param name="path">Stream samples to this file instead of keeping them in memory (created or overwritten).</param>
    /// <param name="moments">Which running moments to keep: <c>null</c> none, <c>false</c> diagonal, <c>true</c> full covariance.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="burnIn"/> is negative or <paramref name="thin"/> &lt; 1.</exception>
    public Trace(long burnIn = 0, long thin = 1, string? path = null, bool? moments = false)
    {
        if (burnIn < 0) throw new ArgumentOutOfRangeException(nameof(burnIn), burnIn, "The burn-in must be non-negative.");
        if (thin < 1) throw new ArgumentOutOfRangeException(nameof(thin), thin, "The thinning interval must be at least 1.");
        BurnIn = burnIn;
        Thin = thin;
        _path = path;
        if (path is null) _samples = new List<ParameterTree>();
        if (moments is { } full) Moments = new RunningMoments(full);
    }

    /// <summary>Steps dropped at the start.</summary>
    public long BurnIn { get; }

    /// <summary>Thinning interval.</summary>
    public long Thin { get; }

    /// <summary>Number of samples kept.</summary>
    public long Count { get; private set; }

    /// <summary>Running moments of the kept samples, or <c>null</c>.</summary>
    public RunningMoments? Moments { get; }

    /// <summary>Offers the state after an update; keeps a copy of its parameters when the step is due. Returns whether it was kept.</summary>
    public bool Record(IAlgorithmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return Record(state.Params, state.Step);
    }

    /// <summary>Offers parameters reached after <paramref name="step"/> updates. Returns whether they were kept.</summary>
    public bool Record(ParameterTree parameters, long step)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (step <= BurnIn || (step - BurnIn) % Thin != 0) return false;
        _template ??= parameters.Map(t => empty(0, dtype: t.dtype).DetachFromDisposeScope());
        Moments?.Add(parameters);
        if (_samples is not null) _samples.Add(parameters.Map(t => t.detach().clone().DetachFromDisposeScope()));
        else Write(parameters);
        Count++;
        return true;
    }

    /// <summary>The kept samples (in memory only).</summary>
    /// <exception cref="InvalidOperationException">The trace streams to a file; use <see cref="ReadSamples"/>.</exception>
    public IReadOnlyList<ParameterTree> Samples =>
        _samples ?? throw new InvalidOperationException($"This trace streams to '{_path}'; read it with ReadSamples().");

    /// <summary>The kept samples, from memory or read back one by one from the file (on the CPU).</summary>
    public IEnumerable<ParameterTree> ReadSamples()
    {
        if (_samples is not null)
        {
            foreach (var s in _samples) yield return s;
            yield break;
        }
        if (Count == 0) yield break;
        _writer!.Flush();
        using var reader = new BinaryReader(new FileStream(_path!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        for (long i = 0; i < Count; i++)
        {
            var leaves = new List<KeyValuePair<string, Tensor>>(_template!.Count);
            foreach (var (name, _) in _template)
            {
                var rank = reader.ReadInt32();
                var shape = new long[rank];
                for (var d = 0; d < rank; d++) shape[d] = reader.ReadInt64();
                var dtype = (ScalarType)reader.ReadByte();
                var length = reader.ReadInt32();
                var t = empty(shape, dtype: dtype);
                t.bytes = reader.ReadBytes(length);
                leaves.Add(new(name, t));
            }
            yield return new ParameterTree(leaves);
        }
    }

    private void Write(ParameterTree parameters)
    {
        if (_writer is null)
        {
            _file = new FileStream(_path!, FileMode.Create, FileAccess.Write, FileShare.Read);
            _writer = new BinaryWriter(_file);
        }
        foreach (var leaf in parameters.Leaves)
        {
            using var cpu = leaf.detach().to(CPU).contiguous();
            _writer.Write((int)cpu.dim());
            foreach (var d in cpu.shape) _writer.Write(d);
            _writer.Write((byte)cpu.dtype);
            var bytes = cpu.bytes;
            _writer.Write(bytes.Length);
            _writer.Write(bytes);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _writer?.Dispose();
        _file?.Dispose();
        _writer = null;
        _file = null;
        if (_samples is not null)
        {
            foreach (var s in _samples) s.DisposeLeaves();
            _samples.Clear();
        }
        _template?.DisposeLeaves();
        Moments?.Dispose();
    }
}
