using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Posteriors.Distributed.Benchmarks -- --filter '*' --job short
// The allocator settings of Posteriors.Native.NativeAllocator.KeepBuffersOnHeap, inherited by the benchmark and silo processes.
Environment.SetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.MaxMmapThreshold}");
Environment.SetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.DefaultTrimThreshold}");
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
