using Orleans.Serialization;
using Orleans.Storage;

namespace Posteriors.Distributed.Storage;

/// <summary>
/// Grain storage in a folder that every silo can reach (a shared file system, or one machine's disk for silos on it):
/// one file per grain and state, written atomically (temporary file, then rename), with an ETag that refuses a write
/// from a stale activation. Useful without Redis and in tests; a multi-machine cluster uses Redis.
/// </summary>
public sealed class DirectoryGrainStorage : IGrainStorage
{
    private readonly string _folder;
    private readonly Serializer _serializer;

    /// <summary>Storage in <paramref name="folder"/> (created when missing).</summary>
    public DirectoryGrainStorage(string folder, Serializer serializer)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        _folder = Path.GetFullPath(folder);
        _serializer = serializer ?? throw new ArgumentNullException(nameof(serializer));
    }

    /// <inheritdoc />
    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        if (!File.Exists(path))
        {
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }
        var bytes = await File.ReadAllBytesAsync(path);
        grainState.State = _serializer.Deserialize<T>(bytes);
        grainState.ETag = ETagOf(bytes);
        grainState.RecordExists = true;
    }

    /// <inheritdoc />
    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        if (File.Exists(path) && ETagOf(await File.ReadAllBytesAsync(path)) != grainState.ETag)
            throw new InconsistentStateException($"The stored state of {grainId} changed since it was read (another activation wrote it).");
        Directory.CreateDirectory(_folder);
        var bytes = _serializer.SerializeToArray(grainState.State);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                await file.WriteAsync(bytes);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        grainState.ETag = ETagOf(bytes);
        grainState.RecordExists = true;
    }

    /// <inheritdoc />
    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        File.Delete(PathOf(stateName, grainId));
        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }

    private string PathOf(string stateName, GrainId grainId)
    {
        // Escaped, so that distinct grain ids ("run/1", "run_1") never share a file.
        return Path.Combine(_folder, Uri.EscapeDataString($"{stateName}-{grainId}") + ".bin");
    }

    private static string ETagOf(byte[] bytes) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes));
}
