using System.IO.Compression;
using static TorchSharp.torch;

namespace Posteriors.Models.Data;

/// <summary>A data file is missing, truncated or not in the expected format.</summary>
public sealed class DataSetException : IOException
{
    /// <summary>Creates the exception.</summary>
    public DataSetException(string message, string? path = null, Exception? inner = null) : base(message, inner) => Path = path;

    /// <summary>The offending file or folder, when there is one.</summary>
    public string? Path { get; }
}

/// <summary>
/// Reader for the IDX format of MNIST-style data sets (plain or gzip-compressed): a big-endian header
/// <c>0x00 0x00 type ndim</c>, then <c>ndim</c> big-endian int32 sizes, then the data.
/// Only unsigned-byte data (type 0x08) is supported, which is what (Fashion-)MNIST uses.
/// </summary>
public static class Idx
{
    /// <summary>Magic number of a 3-D unsigned-byte IDX file (images).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of a 1-D unsigned-byte IDX file (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>
    /// Reads an IDX file of unsigned bytes and checks its magic number and sizes.
    /// </summary>
    /// <param name="path">The file (gzip-compressed or not; detected from its first bytes).</param>
    /// <param name="expectedMagic"><see cref="ImagesMagic"/> or <see cref="LabelsMagic"/>.</param>
    /// <returns>The sizes from the header and the data bytes (row-major).</returns>
    /// <exception cref="DataSetException">The file is missing, has another magic number, or holds fewer or more bytes than its header says.</exception>
    public static (int[] Shape, byte[] Data) Read(string path, int expectedMagic)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new DataSetException($"IDX file '{path}' does not exist.", path);
        try
        {
            using var file = File.OpenRead(path);
            var head = new byte[2];
            var gz = file.Read(head, 0, 2) == 2 && head[0] == 0x1f && head[1] == 0x8b;
            file.Position = 0;
            using Stream stream = gz ? new GZipStream(file, CompressionMode.Decompress) : file;
            var header = ReadExactly(stream, 4, path, "the header");
            var magic = BigEndian(header, 0);
            if (magic != expectedMagic)
                throw new DataSetException(
                    $"IDX file '{path}' has magic number 0x{magic:X8}; expected 0x{expectedMagic:X8} " +
                    $"({(expectedMagic == ImagesMagic ? "unsigned-byte images, 3 dimensions" : "unsigned-byte labels, 1 dimension")}). " +
                    "The file is corrupt or is not the file it is named after.", path);
            var ndim = header[3];
            var dims = ReadExactly(stream, 4 * ndim, path, "the dimension sizes");
            var shape = new int[ndim];
            long total = 1;
            for (var i = 0; i < ndim; i++)
            {
                shape[i] = BigEndian(dims, 4 * i);
                if (shape[i] < 0) throw new DataSetException($"IDX file '{path}' declares a negative size {shape[i]} in dimension {i}.", path);
                total *= shape[i];
            }
            if (total > int.MaxValue) throw new DataSetException($"IDX file '{path}' declares {total} bytes, more than this reader supports.", path);
            var data = ReadExactly(stream, (int)total, path, $"{total} data bytes (shape [{string.Join(", ", shape)}])");
            if (stream.ReadByte() != -1)
                throw new DataSetException($"IDX file '{path}' has data after the {total} bytes its header declares; it is corrupt.", path);
            return (shape, data);
        }
        catch (InvalidDataException e)
        {
            throw new DataSetException($"IDX file '{path}' is not valid gzip: {e.Message}", path, e);
        }
    }

    /// <summary>Reads an images file as a float32 tensor [N, 1, rows, cols] scaled to [0, 1].</summary>
    /// <exception cref="DataSetException">See <see cref="Read"/>.</exception>
    public static Tensor ReadImages(string path)
    {
        var (shape, data) = Read(path, ImagesMagic);
        if (shape.Length != 3) throw new DataSetException($"IDX images file '{path}' has {shape.Length} dimensions; expected 3.", path);
        using var scope = NewDisposeScope();
        var bytes = tensor(data, dtype: ScalarType.Byte).reshape(shape[0], 1, shape[1], shape[2]);
        return bytes.to_type(ScalarType.Float32).div_(255f).MoveToOuterDisposeScope();
    }

    /// <summary>Reads a labels file as an int64 tensor [N].</summary>
    /// <exception cref="DataSetException">See <see cref="Read"/>.</exception>
    public static Tensor ReadLabels(string path)
    {
        var (shape, data) = Read(path, LabelsMagic);
        if (shape.Length != 1) throw new DataSetException($"IDX labels file '{path}' has {shape.Length} dimensions; expected 1.", path);
        using var scope = NewDisposeScope();
        return tensor(data, dtype: ScalarType.Byte).to_type(ScalarType.Int64).MoveToOuterDisposeScope();
    }

    /// <summary>Writes an unsigned-byte IDX file (gzip-compressed when <paramref name="gzip"/>); used by tests and tools.</summary>
    public static void Write(string path, int[] shape, byte[] data, bool gzip = true)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (shape.Length is < 1 or > 255) throw new ArgumentException($"An IDX file has 1 to 255 dimensions; got {shape.Length}.", nameof(shape));
        long total = shape.Aggregate(1L, (a, b) => a * b);
        if (total != data.Length) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] needs {total} bytes; got {data.Length}.", nameof(data));
        using var file = File.Create(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        stream.Write(new byte[] { 0, 0, 0x08, (byte)shape.Length });
        foreach (var d in shape) stream.Write(new[] { (byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d });
        stream.Write(data);
    }

    private static byte[] ReadExactly(Stream stream, int count, string path, string what)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = stream.Read(buffer, read, count - read);
            if (n == 0)
                throw new DataSetException(
                    $"IDX file '{path}' is truncated: it ended after {read} of the {count} bytes of {what}.", path);
            read += n;
        }
        return buffer;
    }

    private static int BigEndian(byte[] b, int offset) =>
        (b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3];
}
