using Posteriors.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Tests.Native;

public class NativeLoadingTests
{
    [Test]
    public void TensorOpsAutogradAndBackwardRun()
    {
        NativeSetup.EnsureTorchLoaded();
        var x = tensor(new[] { 1.0, -2.0, 3.0 }, requires_grad: true);
        var y = (x * x).sum();
        y.backward();
        Assert.That(y.item<double>(), Is.EqualTo(14.0));
        Assert.That(x.grad!.data<double>().ToArray(), Is.EqualTo(new[] { 2.0, -4.0, 6.0 }));
        var g = autograd.grad(new[] { (x * x * x).sum() }, new[] { x });
        Assert.That(g[0].data<double>().ToArray(), Is.EqualTo(new[] { 3.0, 12.0, 27.0 }));
    }

    [Test]
    public void LoadedLibraryIsPatchedOnlyWhereLibStdCxxLacksTheVersion()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("The libstdc++ fix concerns Linux only.");
        var library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.That(File.Exists(library), Is.True, library);
        var systemHasVersion = LibTorchSharpPatcher.SystemLibStdCxxHasVersion(out _);
        // Where libstdc++ is new enough nothing must be patched; where it is old the copy must carry the weak flag.
        Assert.That(LibTorchSharpPatcher.NeedsPatch(library), Is.EqualTo(systemHasVersion));
        Assert.That(NativeSetup.Problem, Is.Null);
    }

    [Test]
    public void PatchingACopyMarksTheRequirementWeakAndIsIdempotent()
    {
        var original = Directory.EnumerateFiles(
            Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ??
                         Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
                "torchsharp"), "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
        if (original is null) Assert.Ignore("No TorchSharp package for Linux in the NuGet cache.");
        var copy = Path.Combine(Path.GetTempPath(), $"libLibTorchSharp-{Guid.NewGuid():N}.so");
        File.Copy(original!, copy);
        try
        {
            Assert.That(LibTorchSharpPatcher.NeedsPatch(copy), Is.True, "the shipped library requires the version strongly");
            Assert.That(LibTorchSharpPatcher.PatchFile(copy), Is.EqualTo(LibTorchSharpPatcher.Outcome.Patched));
            Assert.That(LibTorchSharpPatcher.NeedsPatch(copy), Is.False);
            Assert.That(LibTorchSharpPatcher.PatchFile(copy), Is.EqualTo(LibTorchSharpPatcher.Outcome.AlreadyPatched));
            var a = File.ReadAllBytes(original!);
            var b = File.ReadAllBytes(copy);
            Assert.That(b.Length, Is.EqualTo(a.Length));
            Assert.That(Enumerable.Range(0, a.Length).Count(i => a[i] != b[i]), Is.EqualTo(1), "exactly one byte changes");
            Assert.That(LibTorchSharpPatcher.NeedsPatch(original!), Is.True, "the NuGet cache is never modified");
        }
        finally { File.Delete(copy); }
    }

    [Test]
    public void NonElfFileIsRejectedWithItsPath()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "not an elf file at all, but long enough to have a header of sixty-four bytes...");
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => LibTorchSharpPatcher.PatchFile(path));
            Assert.That(e!.Message, Does.Contain(path));
        }
        finally { File.Delete(path); }
    }
}
