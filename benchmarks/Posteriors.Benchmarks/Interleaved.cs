using System.Diagnostics;
using System.Linq.Expressions;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Posteriors.Benchmarks;

/// <summary>
/// A drift-free companion to BenchmarkDotNet: it runs the [Benchmark] methods of the chosen classes in rounds, every
/// method once per round in a rotating order, and reports each method's ratio to the class's baseline within the same
/// round. A VM whose speed drifts by tens of percent between runs (or during one) then moves baseline and method
/// together, and the median ratio over the rounds stays put. The last column, the ratio of the fastest rounds, is the
/// steadier one when other processes take the cores for whole rounds at a time.
/// </summary>
/// <remarks><c>dotnet run -c Release --project benchmarks/Posteriors.Benchmarks -- interleaved [rounds] [class-name filter…]</c></remarks>
internal static class Interleaved
{
    /// <summary>How long one method runs per round.</summary>
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(150);

    public static void Run(string[] args)
    {
        var rounds = args.Length > 0 && int.TryParse(args[0], out var r) ? r : 12;
        var filters = args.SkipWhile(a => int.TryParse(a, out _)).ToArray();
        var classes = typeof(Interleaved).Assembly.GetTypes()
            .Where(t => t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>()?.Baseline == true))
            .Where(t => filters.Length == 0 || filters.Any(f => t.Name.Contains(f, StringComparison.OrdinalIgnoreCase)))
            .OrderBy(t => t.Name);
        Console.WriteLine($"load average at start: {LoadAverage()}");
        foreach (var type in classes) RunClass(type, rounds);
        Console.WriteLine($"load average at end: {LoadAverage()}");
    }

    private static void RunClass(Type type, int rounds)
    {
        var instance = Activator.CreateInstance(type)!;
        Invoke<GlobalSetupAttribute>(type, instance);
        var methods = type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).ToArray();
        var baseline = methods.Single(m => m.GetCustomAttribute<BenchmarkAttribute>()!.Baseline);
        // A compiled call rather than a bound delegate: benchmark methods may return a value (which is discarded).
        var actions = methods.Select(m => (Name: m.Name,
            Action: Expression.Lambda<Action>(Expression.Call(Expression.Constant(instance), m)).Compile())).ToArray();
        // Warm up (JIT tiers, allocator) and size each slice to about the same wall time.
        var calls = actions.Select(a => Math.Max(1, (int)(Slice.TotalMilliseconds / Math.Max(1e-3, Time(a.Action, 3))))).ToArray();
        var times = actions.Select(_ => new List<double>()).ToArray();
        var cpuTimes = actions.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < rounds; round++)
            for (var j = 0; j < actions.Length; j++)
            {
                var i = (j + round) % actions.Length;
                var cpu = ThreadCpuMilliseconds();
                times[i].Add(Time(actions[i].Action, calls[i]));
                cpuTimes[i].Add((ThreadCpuMilliseconds() - cpu) / calls[i]);
            }
        var b = Array.FindIndex(actions, a => a.Name == baseline.Name);
        Console.WriteLine($"\n{type.Name} ({rounds} rounds, baseline {baseline.Name})");
        // The CPU time of the measuring thread (libtorch set to one thread runs on it) leaves out the time spent waiting
        // for a core, which dominates wall time on a machine shared with other builds.
        Console.WriteLine($"  {"method",-34} {"median ms",10} {"min ms",9} {"ratio",7} {"ratio range",15} {"min/min",8} " +
                          $"{"cpu ms",9} {"cpu ratio",9}");
        for (var i = 0; i < actions.Length; i++)
        {
            var ratios = times[i].Zip(times[b], (t, s) => t / s).Order().ToArray();
            var cpuRatio = Median(cpuTimes[i].Zip(cpuTimes[b], (t, s) => t / s));
            Console.WriteLine($"  {actions[i].Name,-34} {Median(times[i]),10:F4} {times[i].Min(),9:F4} {Median(ratios),7:F3} " +
                              $"{ratios[0],7:F3}–{ratios[^1],-7:F3} {times[i].Min() / times[b].Min(),8:F3} " +
                              $"{Median(cpuTimes[i]),9:F4} {cpuRatio,9:F3}");
        }
        Invoke<GlobalCleanupAttribute>(type, instance);
    }

    /// <summary>Mean milliseconds per call over <paramref name="calls"/> calls.</summary>
    private static double Time(Action action, int calls)
    {
        var watch = Stopwatch.StartNew();
        for (var c = 0; c < calls; c++) action();
        return watch.Elapsed.TotalMilliseconds / calls;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID); NaN where the clock is not available.</summary>
    private static double ThreadCpuMilliseconds()
    {
        if (!OperatingSystem.IsLinux()) return double.NaN;
        return ClockGetTime(3, out var t) == 0 ? t.Seconds * 1e3 + t.Nanoseconds * 1e-6 : double.NaN;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static void Invoke<TAttribute>(Type type, object instance) where TAttribute : Attribute
    {
        foreach (var m in type.GetMethods().Where(m => m.GetCustomAttribute<TAttribute>() is not null)) m.Invoke(instance, null);
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "unknown";
}
