using System.Security.Cryptography;
using System.Text;
using Posteriors.Trees;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Serialization;

/// <summary>A state that can be saved with <see cref="StateFile"/>.</summary>
/// <typeparam name="TSelf">The state type itself.</typeparam>
public interface IPersistentState<TSelf> where TSelf : IPersistentState<TSelf>
{
    /// <summary>A stable name for the state's type, written to the file and checked on load (e.g. "Sghmc").</summary>
    static abstract string Kind { get; }

    /// <summary>The version of this state's layout; raise it when fields change.</summary>
    static abstract int KindVersion { get; }

    /// <summary>Writes every field to <paramref name="record"/>.</summary>
    void WriteTo(StateRecord record);

    /// <summary>Rebuilds a state from <paramref name="record"/> (fields read back by name).</summary>
    static abstract TSelf ReadFrom(StateRecord record);
}

/// <summary>Named fields of a saved state: integers, doubles, strings, tensors and trees.</summary>
public sealed class StateRecord
{
    private readonly Dictionary<string, object> _fields = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();

    internal IEnumerable<KeyValuePair<string, object>> Fields => _order.Select(k => new KeyValuePair<string, object>(k, _fields[k]));

    /// <summary>The type name stored in the file.</summary>
    public string Kind { get; internal set; } = "";

    /// <summary>The layout version stored in the file.</summary>
    public int KindVersion { get; internal set; }

    internal void SetValue(string name, object value)
    {
        if (!_fields.ContainsKey(name)) _order.Add(name);
        _fields[name] = value;
    }

    /// <summary>Stores an integer.</summary>
    public void Set(string name, long value) => SetValue(name, value);

    /// <summary>Stores a double.</summary>
    public void Set(string name, double value) => SetValue(name, value);

    /// <summary>Stores a string.</summary>
    public void Set(string name, string value) => SetValue(name, value);

    /// <summary>Stores a tensor (its values are copied to the CPU when written).</summary>
    public void Set(string name, Tensor value) => SetValue(name, value);

    /// <summary>Stores a tree.</summary>
    public void Set(string name, ParameterTree value) => SetValue(name, value);

    /// <summary>Whether a field is present.</summary>
    public bool Has(string name) => _fields.ContainsKey(name);

    /// <summary>Whether a field is present and holds a tree.</summary>
    internal bool HasTree(string name) => _fields.TryGetValue(name, out var v) && v is ParameterTree;

    /// <summary>The tensors of a field: a tree's leaves, or a tensor on its own.</summary>
    internal IReadOnlyList<Tensor> TensorsOf(string name) => HasTree(name) ? GetTree(name).Leaves : new[] { GetTensor(name) };

    private T Get<T>(string name)
    {
        if (!_fields.TryGetValue(name, out var v))
            throw new InvalidDataException($"The saved {Kind} state has no field '{name}'.");
        return v is T t ? t : throw new InvalidDataException($"Field '{name}' of the saved {Kind} state is a {v.GetType().Name}, not a {typeof(T).Name}.");
    }

    /// <summary>Reads an integer.</summary>
    public long GetLong(string name) => Get<long>(name);

    /// <summary>Reads a double.</summary>
    public double GetDouble(string name) => Get<double>(name);

    /// <summary>Reads a string.</summary>
    public string GetString(string name) => Get<string>(name);

    /// <summary>Reads a tensor.</summary>
    public Tensor GetTensor(string name) => Get<Tensor>(name);

    /// <summary>Reads a tree.</summary>
    public ParameterTree GetTree(string name) => Get<ParameterTree>(name);

    /// <summary>Renames a field written by an earlier layout (nothing happens when it is absent); returns this record.</summary>
    public StateRecord Rename(string from, string to)
    {
        if (!_fields.Remove(from, out var value)) return this;
        _order[_order.IndexOf(from)] = to;
        _fields[to] = value;
        return this;
    }

    /// <summary>Removes a field (nothing happens when it is absent); returns this record.</summary>
    public StateRecord Remove(string name)
    {
        if (_fields.Remove(name)) _order.Remove(name);
        return this;
    }

    /// <summary>Throws unless every named field is present with the given type (checked when a file is loaded).</summary>
    /// <exception cref="InvalidDataException">A field is missing or has another type; the message names it.</exception>
    internal void Require(IEnumerable<(string Name, Type Type)> fields)
    {
        foreach (var (name, type) in fields)
        {
            if (!_fields.TryGetValue(name, out var v))
                throw new InvalidDataException($"The saved {Kind} state (version {KindVersion}) has no field '{name}'.");
            if (!type.IsInstanceOfType(v))
                throw new InvalidDataException($"Field '{name}' of the saved {Kind} state is a {v.GetType().Name}, not a {type.Name}.");
        }
    }

    /// <summary>Copies every field into <paramref name="target"/> (tensors by reference).</summary>
    internal void CopyTo(StateRecord target)
    {
        foreach (var name in _order) target.SetValue(name, _fields[name]);
    }

    /// <summary>A record with the same fields whose tensors are fresh copies owned by the caller (no dispose scope).</summary>
    internal StateRecord Clone()
    {
        var copy = new StateRecord { Kind = Kind, KindVersion = KindVersion };
        foreach (var name in _order)
        {
            copy.SetValue(name, _fields[name] switch
            {
                Tensor t => Own(t),
                ParameterTree tree => tree.Map(Own),
                var other => other,
            });
        }
        return copy;
    }

    /// <summary>Disposes every tensor of the record.</summary>
    internal void DisposeTensors()
    {
        foreach (var value in _fields.Values)
        {
            if (value is Tensor t) t.Dispose();
            else if (value is ParameterTree tree) tree.DisposeLeaves();
        }
    }

    /// <summary>A deep copy of a tensor owned by the caller; the intermediate detached view is disposed at once.</summary>
    internal static Tensor Own(Tensor t)
    {
        using var view = t.detach();
        return view.clone().DetachFromDisposeScope();
    }
}

/// <summary>
/// Saves and loads algorithm states in a versioned binary format, atomically.
/// </summary>
/// <remarks>
/// Layout (little-endian): the 8 ASCII bytes <c>PSTSTATE</c>; int32 format version (1); string kind; int32 kind
/// version; int32 field count; per field a string name, one type byte (1 int64, 2 double, 3 string, 4 tensor,
/// 5 tree) and the value; then a 32-byte SHA-256 of everything before it. A tensor is one dtype byte (TorchSharp's
/// <c>ScalarType</c>), int32 rank, int64 dimensions and the raw contiguous element bytes; a tree is an int32 count of
/// (name, tensor) pairs in the tree's order. Strings are .NET's length-prefixed UTF-8.
/// Writing goes to a temporary file in the same folder, flushed to disk, then renamed over the target, so a crash
/// leaves the previous file intact.
/// </remarks>
public static class StateFile
{
    private static readonly byte[] Magic = "PSTSTATE"u8.ToArray();

    /// <summary>The format version this library writes.</summary>
    public const int FormatVersion = 1;

    /// <summary>Saves <paramref name="state"/> to <paramref name="path"/> atomically.</summary>
    public static void Save<TState>(string path, TState state) where TState : IPersistentState<TState>
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(state);
        var record = new StateRecord { Kind = TState.Kind, KindVersion = TState.KindVersion };
        state.WriteTo(record);

        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                using (var hashing = new HashingStream(file, hash))
                using (var writer = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
                    WriteRecord(writer, record);
                file.Write(hash.GetHashAndReset());
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Loads a state saved with <see cref="Save{TState}"/>, placing tensors on <paramref name="device"/> (CPU by default).</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The file is not a state file, is corrupt or truncated, holds another kind of state, or a newer version.</exception>
    public static TState Load<TState>(string path, Device? device = null) where TState : IPersistentState<TState>
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not a Posteriors state file (bad header).");
        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw new InvalidDataException($"'{path}' is corrupt or truncated (checksum mismatch).");

        StateRecord record;
        using (var reader = new BinaryReader(new MemoryStream(bytes, 0, body.Length), Encoding.UTF8))
        {
            try { record = ReadRecord(reader, path, device ?? CPU); }
            catch (EndOfStreamException) { throw new InvalidDataException($"'{path}' is truncated."); }
        }
        if (record.Kind != TState.Kind)
            throw new InvalidDataException($"'{path}' holds a {record.Kind} state, not a {TState.Kind} state.");
        if (record.KindVersion > TState.KindVersion)
            throw new InvalidDataException(
                $"'{path}' holds a {record.Kind} state of version {record.KindVersion}; this library reads up to version {TState.KindVersion}.");
        return TState.ReadFrom(record);
    }

    private static void WriteRecord(BinaryWriter w, StateRecord record)
    {
        w.Write(Magic);
        w.Write(FormatVersion);
        w.Write(record.Kind);
        w.Write(record.KindVersion);
        var fields = record.Fields.ToList();
        w.Write(fields.Count);
        foreach (var (name, value) in fields)
        {
            w.Write(name);
            switch (value)
            {
                case long l: w.Write((byte)1); w.Write(l); break;
                case double d: w.Write((byte)2); w.Write(d); break;
                case string s: w.Write((byte)3); w.Write(s); break;
                case Tensor t: w.Write((byte)4); WriteTensor(w, t); break;
                case ParameterTree tree:
                    w.Write((byte)5);
                    w.Write(tree.Count);
                    foreach (var (leafName, leaf) in tree) { w.Write(leafName); WriteTensor(w, leaf); }
                    break;
                default: throw new InvalidOperationException($"Field '{name}' has unsupported type {value.GetType()}.");
            }
        }
    }

    private static StateRecord ReadRecord(BinaryReader r, string path, Device device)
    {
        r.ReadBytes(Magic.Length);
        var format = r.ReadInt32();
        if (format != FormatVersion)
            throw new InvalidDataException($"'{path}' uses state format {format}; this library reads format {FormatVersion}.");
        var record = new StateRecord { Kind = r.ReadString(), KindVersion = r.ReadInt32() };
        var count = r.ReadInt32();
        for (var i = 0; i < count; i++)
        {
            var name = r.ReadString();
            var type = r.ReadByte();
            switch (type)
            {
                case 1: record.Set(name, r.ReadInt64()); break;
                case 2: record.Set(name, r.ReadDouble()); break;
                case 3: record.Set(name, r.ReadString()); break;
                case 4: record.Set(name, ReadTensor(r, device)); break;
                case 5:
                    var leaves = r.ReadInt32();
                    var list = new List<KeyValuePair<string, Tensor>>(leaves);
                    for (var j = 0; j < leaves; j++) list.Add(new(r.ReadString(), ReadTensor(r, device)));
                    record.Set(name, new ParameterTree(list));
                    break;
                default: throw new InvalidDataException($"'{path}' has a field '{name}' of unknown type {type}.");
            }
        }
        return record;
    }

    private static void WriteTensor(BinaryWriter w, Tensor t)
    {
        using var cpu = t.detach().to(CPU).contiguous();
        w.Write((byte)cpu.dtype);
        w.Write((int)cpu.dim());
        foreach (var d in cpu.shape) w.Write(d);
        var bytes = cpu.bytes;
        w.Write((long)bytes.Length);
        w.Write(bytes);
    }

    private static Tensor ReadTensor(BinaryReader r, Device device)
    {
        var dtype = (ScalarType)r.ReadByte();
        var rank = r.ReadInt32();
        if (rank < 0 || rank > 64) throw new InvalidDataException($"Tensor of rank {rank}.");
        var shape = new long[rank];
        for (var i = 0; i < rank; i++) shape[i] = r.ReadInt64();
        var length = r.ReadInt64();
        var data = r.ReadBytes(checked((int)length));
        if (data.Length != length) throw new EndOfStreamException();
        var t = empty(shape, dtype: dtype);
        if (t.bytes.Length != length)
            throw new InvalidDataException($"Tensor of shape [{string.Join(", ", shape)}] and dtype {dtype} cannot hold {length} bytes.");
        t.bytes = data;
        return device.type == DeviceType.CPU ? t : t.to(device);
    }

    /// <summary>Passes writes through to a stream while hashing them.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            hash.AppendData(buffer);
            inner.Write(buffer);
        }
    }
}
