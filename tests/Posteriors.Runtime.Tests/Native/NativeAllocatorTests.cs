using Posteriors.Native;
using static TorchSharp.torch;

namespace Posteriors.Tests.Native;

public class NativeAllocatorTests
{
    /// <summary>Minor page faults of this process so far (field 10 of /proc/self/stat).</summary>
    private static long MinorFaults()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Once buffers stay on the heap, allocating, writing and freeing the same 4 MiB tensor again and again reuses
    /// memory that is already mapped: far fewer page faults than the 1,024 pages a fresh mapping costs per iteration.
    /// </summary>
    [Test]
    public void BuffersAreReusedInsteadOfFaultedInAgain()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("mallopt is a glibc function; this machine is not Linux.");
        Assert.That(NativeAllocator.KeepBuffersOnHeap(), Is.True, "glibc accepts the settings");
        for (var i = 0; i < 5; i++) using (var warm = empty(1024 * 1024)) warm.fill_(1f);
        const int iterations = 200;
        var before = MinorFaults();
        for (var i = 0; i < iterations; i++)
            using (var t = empty(1024 * 1024)) t.fill_(1f);  // 4 MiB = 1,024 pages
        var faults = MinorFaults() - before;
        TestContext.Out.WriteLine($"{faults} minor faults in {iterations} allocations of 4 MiB");
        Assert.That(faults, Is.LessThan(iterations * 1024 / 20), "at most 5% of the pages faulted in again");
    }

    [Test]
    public void ThresholdsAreCheckedByName()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => NativeAllocator.KeepBuffersOnHeap(mmapThreshold: 64 * 1024 * 1024))!;
        Assert.That(e.ParamName, Is.EqualTo("mmapThreshold"));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => NativeAllocator.KeepBuffersOnHeap(trimThreshold: 0))!;
        Assert.That(e.ParamName, Is.EqualTo("trimThreshold"));
    }
}
