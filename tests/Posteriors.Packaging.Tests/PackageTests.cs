using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace Posteriors.Packaging.Tests;

/// <summary>
/// `dotnet pack` of the runtime gives a package that carries the generator; a fresh project that references only that
/// package (from a local folder feed) and TorchSharp-cpu builds, generates its model and runs it. Offline once the
/// NuGet cache holds TorchSharp: the user cache is a fallback folder, and the package under test goes to a private
/// packages folder so that no stale copy is ever picked up.
/// </summary>
[NonParallelizable]
public class PackageTests
{
    private const string Version = "0.0.0-packagingtest";
    private string _work = "";

    [SetUp]
    public void CreateWorkFolder()
    {
        _work = Path.Combine(Path.GetTempPath(), "posteriors-packaging-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_work);
    }

    [TearDown]
    public void RemoveWorkFolder()
    {
        try { Directory.Delete(_work, recursive: true); }
        catch (IOException) { }
    }

    [Test]
    public void PackageCarriesTheGeneratorAndAFreshConsumerBuildsAndRunsAModel()
    {
        var feed = Path.Combine(_work, "feed");
        var configuration = typeof(PackageTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        Dotnet(RepositoryRoot(), "pack", Path.Combine("src", "Posteriors.Runtime", "Posteriors.Runtime.csproj"), "-c", configuration,
            "-o", feed, "-p:PackageVersion=" + Version, "-nodeReuse:false");

        var package = Path.Combine(feed, $"Posteriors.{Version}.nupkg");
        using (var zip = ZipFile.OpenRead(package))
        {
            var entries = zip.Entries.Select(e => e.FullName).ToList();
            Assert.That(entries, Does.Contain("analyzers/dotnet/cs/Posteriors.Generators.dll"));
            Assert.That(entries, Does.Contain("analyzers/dotnet/cs/Posteriors.Generators.CodeFixes.dll"));
            Assert.That(entries, Does.Contain("lib/net10.0/Posteriors.Runtime.dll"));
            Assert.That(entries, Does.Contain("buildTransitive/Posteriors.targets"));
            Assert.That(entries, Does.Contain("buildTransitive/LibTorchSharpPatcher.cs"));
            using var nuspec = new StreamReader(zip.GetEntry("Posteriors.nuspec")!.Open());
            Assert.That(nuspec.ReadToEnd(), Does.Not.Contain("Posteriors.Generators"), "the generator is inside the package, not a dependency");
        }

        var consumer = Path.Combine(_work, "consumer");
        Directory.CreateDirectory(consumer);
        var userCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        // Once the user cache holds TorchSharp-cpu (after any restore of the repository) no remote source is listed at
        // all, so the test cannot depend on the network; before that, nuget.org fills the cache.
        var remote = Directory.Exists(Path.Combine(userCache, "torchsharp-cpu", "0.107.0"))
            ? ""
            : """<add key="nuget.org" value="https://api.nuget.org/v3/index.json" />""";
        File.WriteAllText(Path.Combine(consumer, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(_work, "packages")}" /></config>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                {remote}
              </packageSources>
              <fallbackPackageFolders><clear /><add key="cache" value="{userCache}" /></fallbackPackageFolders>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <EmitCompilerGeneratedFiles>true</EmitCompilerGeneratedFiles>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Posteriors" Version="{Version}" />
                <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(consumer, "Program.cs"), """
            using System.Globalization;
            using Posteriors;
            using Posteriors.Modeling;
            using static TorchSharp.torch;

            var model = new BayesianRegression { DatasetSize = 10 };
            var x = zeros(2, 3, dtype: ScalarType.Float64);
            var y = tensor(new[] { 1.0, 2.0 }, dtype: ScalarType.Float64);
            var result = Autodiff.ValueAndGrad<(Tensor, Tensor)>(model.LogPosterior, model.InitialParameters(), (x, y));
            Console.WriteLine("names=" + string.Join(",", model.ParameterNames));
            Console.WriteLine("value=" + result.Value.item<double>().ToString("R", CultureInfo.InvariantCulture));

            [Model]
            public partial class BayesianRegression
            {
                [Prior(Distribution.Normal, 0, 1)] public Tensor Weight = zeros(3, 1, dtype: ScalarType.Float64);
                [Prior(Distribution.Normal, 0, 1)] public Tensor Bias = zeros(1, dtype: ScalarType.Float64);
                [Prior(Distribution.HalfNormal, 1), Positive] public Tensor NoiseScale = ones(1, dtype: ScalarType.Float64);

                [Likelihood]
                public Tensor LogLikelihood(Tensor x, Tensor y) => LogProb.Normal(y, x.matmul(Weight).squeeze(1) + Bias, NoiseScale);
            }
            """);

        Dotnet(consumer, "build", "-c", "Release", "-nodeReuse:false");
        var generated = Directory.GetFiles(Path.Combine(consumer, "obj"), "BayesianRegression.g.cs", SearchOption.AllDirectories);
        Assert.That(generated, Has.Length.EqualTo(1), "the packaged generator ran");

        var output = Dotnet(consumer, Path.Combine("bin", "Release", "net10.0", "Consumer.dll"));
        Assert.That(output, Does.Contain("names=Weight,Bias,log_NoiseScale"));
        // At W = 0, b = 0, σ = 1 (u = 0), x = 0, y = (1, 2), N = 10:
        // mean log N(y; 0, 1) + [4 log N(0; 0, 1) + log HalfNormal(1; 1) + u] / N.
        var halfLog2Pi = 0.5 * Math.Log(2 * Math.PI);
        var expected = (-0.5 * (1 + 4) / 2 - halfLog2Pi) + (4 * -halfLog2Pi + (Math.Log(2) - halfLog2Pi - 0.5)) / 10;
        var line = output.Split('\n').Single(l => l.StartsWith("value=", StringComparison.Ordinal));
        Assert.That(double.Parse(line["value=".Length..].Trim(), CultureInfo.InvariantCulture), Is.EqualTo(expected).Within(1e-12));

        var warningsAsErrors = Dotnet(consumer, "msbuild", "-getProperty:WarningsAsErrors", "-p:Configuration=Release", "-nodeReuse:false");
        Assert.That(warningsAsErrors, Does.Contain("CS8784").And.Contain("CS8785").And.Contain("CS9057"));
    }

    [Test]
    public void ProjectReferenceConsumerThatImportsTheTargetRunsATensorOperationFirst()
    {
        // A console app outside the repository (no Directory.Build.targets reaches it) with a ProjectReference to the
        // runtime, whose first statement is a tensor operation: no Posteriors code runs before TorchSharp loads, so only
        // the imported build target can have fixed libLibTorchSharp.so (on Debian 12; elsewhere nothing needs fixing).
        var root = RepositoryRoot();
        var consumer = Path.Combine(_work, "reference-consumer");
        Directory.CreateDirectory(consumer);
        File.Copy(Path.Combine(root, "NuGet.config"), Path.Combine(consumer, "nuget.config"));
        var runtime = Path.Combine(root, "src", "Posteriors.Runtime");
        File.WriteAllText(Path.Combine(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <Import Project="{Path.Combine(runtime, "build", "Posteriors.Runtime.targets")}" />
              <ItemGroup>
                <ProjectReference Include="{Path.Combine(runtime, "Posteriors.Runtime.csproj")}" />
                <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(consumer, "Program.cs"), """
            Console.WriteLine("sum=" + TorchSharp.torch.ones(3).sum().item<float>());
            Later.Run();

            static class Later
            {
                public static void Run() => Console.WriteLine("leaves=" + Posteriors.Trees.ParameterTree.From(("a", TorchSharp.torch.ones(2))).Count);
            }
            """);
        Dotnet(consumer, "build", "-c", "Release", "-nodeReuse:false");
        var output = Dotnet(consumer, Path.Combine("bin", "Release", "net10.0", "Consumer.dll"));
        Assert.That(output, Does.Contain("sum=3").And.Contain("leaves=1"));
    }

    private static string RepositoryRoot([CallerFilePath] string file = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, "..", ".."));

    /// <summary>Runs the dotnet CLI; fails the test with its output when it exits non-zero.</summary>
    private static string Dotnet(string directory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        // The test host's MSBuild variables would point the child build at the outer build's MSBuild.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(4)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} timed out");
        }
        var output = stdout.Result + stderr.Result;
        if (process.ExitCode != 0) Assert.Fail($"dotnet {string.Join(' ', args)} exited with {process.ExitCode}:\n{output}");
        return output;
    }
}
