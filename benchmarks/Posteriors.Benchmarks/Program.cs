using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Posteriors.Benchmarks -- --filter '*'
// dotnet run -c Release --project benchmarks/Posteriors.Benchmarks -- interleaved [rounds] [class-name filter…]
//
// glibc's treatment of the megabyte-sized buffers of a training step depends on the process's history (see
// Posteriors.Native.NativeAllocator): the same forward+backward measured 5.5 ms or 27 ms. These variables give every
// benchmark process, which inherits them, the allocator settings of NativeAllocator.KeepBuffersOnHeap, so methods are
// compared on equal terms, as the samples run.
Environment.SetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.MaxMmapThreshold}");
Environment.SetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_", Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") ?? $"{Posteriors.Native.NativeAllocator.DefaultTrimThreshold}");
if (args is ["interleaved", .. var rest]) Posteriors.Benchmarks.Interleaved.Run(rest);
else BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
