using System.Buffers.Binary;
using System.Text.Json;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Serialization;

/// <summary>
/// Reads and writes the safetensors format, which Python reads with <c>safetensors.torch.load_file</c>: an 8-byte
/// little-endian header length n, n bytes of JSON mapping each tensor's name to its dtype, shape and
/// <c>data_offsets</c> [begin, end) into the data that follows, and the raw little-endian bytes of every tensor.
/// </summary>
public static class SafeTensors
{
    // Names as the format spells them.
    private static readonly (string Name, ScalarType Type, int Size)[] DTypes =
    {
        ("F64", ScalarType.Float64, 8), ("F32", ScalarType.Float32, 4), ("F16", ScalarType.Float16, 2),
        ("BF16", ScalarType.BFloat16, 2), ("I64", ScalarType.Int64, 8), ("I32", ScalarType.Int32, 4),
        ("I16", ScalarType.Int16, 2), ("I8", ScalarType.Int8, 1), ("U8", ScalarType.Byte, 1), ("BOOL", ScalarType.Bool, 1),
    };

    /// <summary>The tensors of a safetensors file, in the order of their data, on the CPU.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed safetensors file; the message names the file and, where one is at fault, the tensor.</exception>
    public static ParameterTree Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"The weights file '{path}' does not exist.", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw Corrupt(path, $"it has {bytes.Length} bytes, fewer than the 8 of the header length");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8)) throw Corrupt(path, $"its header length {headerLength} exceeds the {bytes.Length - 8} bytes that follow");
        var dataStart = 8 + (long)headerLength;
        var dataLength = bytes.Length - dataStart;
        JsonDocument header;
        try { header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength)); }
        catch (JsonException e) { throw Corrupt(path, "its header is not valid JSON: " + e.Message); }

        var entries = new List<(string Name, long Begin, Tensor Tensor)>();
        using (header)
        {
            if (header.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(path, "its header is not a JSON object");
            foreach (var property in header.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") continue;
                var (begin, tensor) = ReadEntry(path, property, bytes, dataStart, dataLength);
                entries.Add((property.Name, begin, tensor));
            }
        }
        return new ParameterTree(entries.OrderBy(e => e.Begin).Select(e => new KeyValuePair<string, Tensor>(e.Name, e.Tensor)));
    }

    private static (long Begin, Tensor Tensor) ReadEntry(string path, JsonProperty property, byte[] bytes, long dataStart, long dataLength)
    {
        var name = property.Name;
        try
        {
            var entry = property.Value;
            var dtypeName = entry.GetProperty("dtype").GetString();
            var dtype = DTypes.FirstOrDefault(d => d.Name == dtypeName);
            if (dtype.Name is null) throw Corrupt(path, $"tensor '{name}' has the unsupported dtype '{dtypeName}'");
            var shape = entry.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (shape.Any(s => s < 0)) throw Corrupt(path, $"tensor '{name}' has a negative dimension in its shape [{string.Join(", ", shape)}]");
            var offsets = entry.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                throw Corrupt(path, $"tensor '{name}' has data_offsets [{string.Join(", ", offsets)}] outside the {dataLength} data bytes");
            var numel = shape.Aggregate(1L, (a, s) => a * s);
            if (offsets[1] - offsets[0] != numel * dtype.Size)
                throw Corrupt(path, $"tensor '{name}' of shape [{string.Join(", ", shape)}] and dtype {dtypeName} needs {numel * dtype.Size} bytes but its data_offsets span {offsets[1] - offsets[0]}");
            var tensor = empty(shape, dtype.Type);
            if (numel > 0) tensor.bytes = bytes.AsSpan((int)(dataStart + offsets[0]), (int)(offsets[1] - offsets[0])).ToArray();
            return (offsets[0], tensor);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw Corrupt(path, $"the header entry of tensor '{name}' lacks or misspells dtype, shape or data_offsets ({e.Message})");
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> to a new safetensors file (each leaf's bytes as stored, contiguous, little-endian;
    /// tensors on another device are copied to the CPU for writing). An existing file is never replaced.
    /// </summary>
    /// <param name="path">The file to create.</param>
    /// <param name="tensors">The named tensors.</param>
    /// <param name="metadata">Optional string metadata (the header's <c>__metadata__</c>).</param>
    /// <exception cref="IOException"><paramref name="path"/> exists.</exception>
    /// <exception cref="ArgumentException">A leaf has a dtype the format cannot hold.</exception>
    public static void Save(string path, ParameterTree tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (File.Exists(path)) throw new IOException($"'{path}' exists; safetensors files are never overwritten.");
        var data = new List<byte[]>();
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, leaf) in tensors)
            {
                var dtype = DTypes.FirstOrDefault(d => d.Type == leaf.dtype);
                if (dtype.Name is null) throw new ArgumentException($"Tensor '{name}' has dtype {leaf.dtype}, which safetensors cannot hold.", nameof(tensors));
                byte[] bytes;
                using (var host = leaf.detach().to(CPU).contiguous()) bytes = leaf.numel() == 0 ? Array.Empty<byte>() : host.bytes.ToArray();
                data.Add(bytes);
                writer.WriteStartObject(name);
                writer.WriteString("dtype", dtype.Name);
                writer.WriteStartArray("shape");
                foreach (var s in leaf.shape) writer.WriteNumberValue(s);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes.Length);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes.Length;
            }
            writer.WriteEndObject();
        }
        // The format pads the header with spaces to a multiple of 8 so that the data is aligned.
        var header = json.ToArray();
        var padded = (header.Length + 7) / 8 * 8;
        var temporary = path + ".partial";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            file.Write(length);
            file.Write(header);
            for (var i = header.Length; i < padded; i++) file.WriteByte((byte)' ');
            foreach (var bytes in data) file.Write(bytes);
        }
        File.Move(temporary, path, overwrite: false);
    }

    private static InvalidDataException Corrupt(string path, string why) =>
        new($"'{path}' is not a valid safetensors file: {why}.");
}
