using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Posteriors.Distributed.Benchmarks -- --filter '*' --job short
// The allocator settings of Posteriors.Native.NativeAllocator.KeepBuffersOnHeap, inherited by the benchmark and silo processes.
Environment.SetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.MaxMmapThreshold}");
Environment.SetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.DefaultTrimThreshold}");
if (args.Length > 1 && args[0] == "--worker")
    Posteriors.Distributed.Benchmarks.PlainWorkers.RunWorker(int.Parse(args[1]));
else if (args.Length > 0 && args[0] == "--ratios")
    await Posteriors.Distributed.Benchmarks.SameRunRatios.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 21, args.Length > 2 ? int.Parse(args[2]) : Posteriors.Distributed.Benchmarks.ClusterBenchmarks.Steps,
        args.Length > 3 ? int.Parse(args[3]) : 1, args.Length > 4 ? int.Parse(args[4]) : 3);
else
    BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
