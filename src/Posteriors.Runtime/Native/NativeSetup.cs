using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Posteriors.Native;

/// <summary>
/// Second line of the libstdc++ fix (the first is the build target shipped with the package): when the
/// assembly loads, any unpatched <c>libLibTorchSharp.so</c> next to the application is patched before
/// TorchSharp initialises, and a failure to load TorchSharp is reported with the cause and the remedy.
/// </summary>
public static class NativeSetup
{
    private static string? _problem;

    /// <summary>What the start-up fix could not do, or <c>null</c> when nothing went wrong.</summary>
    public static string? Problem => _problem;

#pragma warning disable CA2255 // a library initializer is the point: it must run before TorchSharp loads its natives
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void PatchBeforeTorchLoads()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            if (LibTorchSharpPatcher.SystemLibStdCxxHasVersion(out _)) return;
            foreach (var file in Candidates())
            {
                if (!LibTorchSharpPatcher.NeedsPatch(file)) continue;
                try { LibTorchSharpPatcher.PatchFile(file); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _problem = $"'{file}' needs {LibTorchSharpPatcher.MissingVersion} marked weak but could not be rewritten ({e.Message}).";
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            _problem = "Could not inspect TorchSharp's native library: " + e.Message;
        }
    }

    private static IEnumerable<string> Candidates()
    {
        var roots = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? "" }
            .Where(d => d.Length > 0 && Directory.Exists(d)).Distinct();
        foreach (var root in roots)
        {
            var direct = Path.Combine(root, "libLibTorchSharp.so");
            if (File.Exists(direct)) yield return direct;
            foreach (var sub in new[] { "runtimes", "cpu" })
            {
                var dir = Path.Combine(root, sub);
                if (!Directory.Exists(dir)) continue;
                foreach (var f in Directory.EnumerateFiles(dir, "libLibTorchSharp.so", SearchOption.AllDirectories))
                    yield return f;
            }
        }
    }

    /// <summary>
    /// Initialises TorchSharp's native backend, turning a load failure into an exception that says why and
    /// what to do. Call it at start-up to fail early; the algorithms do not need it.
    /// </summary>
    /// <exception cref="InvalidOperationException">TorchSharp's native library could not be loaded.</exception>
    public static void EnsureTorchLoaded()
    {
        try
        {
            using var probe = torch.zeros(1);
        }
        catch (TypeInitializationException e)
        {
            var hint = OperatingSystem.IsLinux()
                ? $" On Linux this is usually libLibTorchSharp.so requiring {LibTorchSharpPatcher.MissingVersion}, which this " +
                  "system's libstdc++ lacks. Rebuild the application with the Posteriors package referenced (its build target " +
                  "patches the copy in the output folder), make that file writable, or install a libstdc++ from GCC 13 or newer. " +
                  "Also check that the application references TorchSharp-cpu (or a CUDA package)."
                : " Check that the application references TorchSharp-cpu (or a CUDA package).";
            throw new InvalidOperationException(
                "TorchSharp's native library failed to load." + (_problem is null ? "" : " " + _problem) + hint, e);
        }
    }
}
