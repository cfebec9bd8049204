using System.Diagnostics;
using Posteriors.Models.Data;
using Spectre.Console;
using static TorchSharp.torch;

namespace Posteriors.Cli.Study;

/// <summary>Finds (or installs, or stands in for) Fashion-MNIST and builds the out-of-distribution set.</summary>
public static class StudyData
{
    /// <summary>
    /// The real data when found; else, when running as root with apt-get and <c>--no-install</c> not given,
    /// installs <c>dataset-fashion-mnist</c> and retries; else a clearly labelled synthetic stand-in.
    /// </summary>
    public static (ImageDataSet Train, ImageDataSet Test) Load(StudyOptions options, IAnsiConsole console)
    {
        if (!options.Synthetic)
        {
            if (FashionMnist.Find(options.DataFolder) is null && options.DataFolder is null && !options.NoInstall) TryInstall(console);
            if (FashionMnist.Find(options.DataFolder) is not null) return FashionMnist.Load(options.DataFolder);
            console.MarkupLine($"[yellow]Fashion-MNIST not found[/] ({Markup.Escape(options.DataFolder ?? FashionMnist.DebianFolder)}). " +
                               $"Install it with [bold]sudo {Markup.Escape(FashionMnist.InstallCommand)}[/] for the real study.");
        }
        console.MarkupLine("[bold yellow]Using a SYNTHETIC stand-in data set[/]: the numbers below are not Fashion-MNIST results.");
        return SyntheticImages.Generate(Math.Max(options.TrainSize!.Value, 1000), Math.Max(options.TestSize!.Value, 500), seed: 1);
    }

    private static void TryInstall(IAnsiConsole console)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root" || !File.Exists("/usr/bin/apt-get")) return;
        console.MarkupLine($"Fashion-MNIST is not installed; running [bold]{Markup.Escape(FashionMnist.InstallCommand)}[/] …");
        foreach (var args in new[] { "update -qq", $"install -y -qq {FashionMnist.DebianPackage}" })
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo("apt-get", args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
                p.StandardOutput.ReadToEnd();
                var err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                if (p.ExitCode != 0)
                {
                    console.MarkupLine($"[yellow]apt-get {Markup.Escape(args)} failed ({p.ExitCode}):[/] {Markup.Escape(err.Trim())}");
                    return;
                }
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                console.MarkupLine($"[yellow]Could not run apt-get: {Markup.Escape(e.Message)}[/]");
                return;
            }
        }
    }

    /// <summary>
    /// The out-of-distribution set: the test images as photographic negatives (1 − x), which keep every image's
    /// structure but none of the data set's statistics (dark background, bright garment).
    /// </summary>
    public static ImageDataSet OutOfDistribution(ImageDataSet test) =>
        new(1 - test.Images, test.Labels, test.Classes, "inverted test images (1 − x)", test.IsSynthetic);
}
