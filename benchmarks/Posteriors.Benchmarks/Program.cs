using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Posteriors.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
