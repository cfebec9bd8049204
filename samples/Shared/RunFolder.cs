namespace Posteriors.Samples;

/// <summary>
/// One folder per run inside the output folder, named by the UTC start time, with <c>latest</c> (a relative symbolic
/// link, or a text file holding the name where links are not allowed) pointing at the newest: a rerun never replaces
/// earlier results, and <c>--resume</c> finds the run to continue.
/// </summary>
internal static class RunFolder
{
    /// <summary>The name of the pointer to the newest run folder.</summary>
    public const string LatestName = "latest";

    /// <summary>
    /// Checks that <paramref name="root"/> is a writable folder (creating it), then creates a new run folder and points
    /// <c>latest</c> at it, or (with <paramref name="resume"/>) returns the folder <c>latest</c> points at.
    /// </summary>
    /// <exception cref="UsageException">The output folder is a file or not writable, or there is no run to resume.</exception>
    public static string Open(string root, bool resume)
    {
        if (File.Exists(root)) throw new UsageException($"--output '{root}' is a file; give a folder.");
        try
        {
            Directory.CreateDirectory(root);
            var probe = Path.Combine(root, $".write-test-{Guid.NewGuid():N}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--output '{root}' is not a writable folder: {e.Message}");
        }
        if (resume)
            return Latest(root) ?? throw new UsageException($"--resume: '{root}' holds no earlier run to resume (no '{LatestName}' run folder); run without --resume first.");

        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture);
        var name = stamp;
        for (var i = 2; Directory.Exists(Path.Combine(root, name)) || File.Exists(Path.Combine(root, name)); i++) name = $"{stamp}-{i}";
        var folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        PointLatest(root, name);
        return folder;
    }

    /// <summary>The run folder <c>latest</c> points at, or null.</summary>
    public static string? Latest(string root)
    {
        var latest = Path.Combine(root, LatestName);
        var info = new FileInfo(latest);
        string? name = info.LinkTarget ?? (info.Exists ? File.ReadAllText(latest).Trim() : null);
        if (name is null) return null;
        var folder = Path.GetFullPath(Path.Combine(root, name));
        return Directory.Exists(folder) ? folder : null;
    }

    private static void PointLatest(string root, string name)
    {
        var latest = Path.Combine(root, LatestName);
        var temp = Path.Combine(root, $".{LatestName}-{Guid.NewGuid():N}");
        try
        {
            // A new link renamed over the old one: readers see the old or the new run folder, never none.
            File.CreateSymbolicLink(temp, name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.WriteAllText(temp, name);
        }
        // File.Move follows a link to a folder and refuses it: rename the link itself.
        if (!OperatingSystem.IsWindows() && Rename(temp, latest) == 0) return;
        if (File.Exists(latest) || new FileInfo(latest).LinkTarget is not null) File.Delete(latest);
        if (new FileInfo(temp).LinkTarget is { } target)
        {
            File.Delete(temp);
            File.CreateSymbolicLink(latest, target);
        }
        else File.Move(temp, latest, overwrite: true);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static extern int Rename(string oldPath, string newPath);
}

/// <summary>Files written whole or not at all: into a temporary file beside the target, then renamed over it.</summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/>, which receives the temporary file's path.</summary>
    public static string Write(string path, Action<string> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        // Keep the extension last: some writers (image encoders) choose the format by it.
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileNameWithoutExtension(full)}-{Guid.NewGuid():N}.tmp{Path.GetExtension(full)}");
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        return full;
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> atomically.</summary>
    public static string WriteAllText(string path, string text) => Write(path, temp => File.WriteAllText(temp, text));
}
