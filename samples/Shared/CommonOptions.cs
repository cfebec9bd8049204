using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Posteriors.Samples;

/// <summary>A bad command line or an unusable path: reported as one line with exit code 2, before any work.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The settings of <see cref="CommonOptions"/>, read and checked.</summary>
internal sealed record CommonSettings(string Output, string Device, IReadOnlyList<int> Seeds, int Threads, bool Resume, bool Tiny, string? Data, bool NoPlots);

/// <summary>
/// The options the three executables share (the study CLI, ContinualLearning, BayesianLora), defined once: the same
/// names, short aliases, defaults and checks everywhere. An executable adds its own options next to these with the
/// helpers below; a new shared option goes here and reaches all three.
/// </summary>
internal sealed partial class CommonOptions
{
    /// <summary>Exit code of a bad command line (and of an unusable output or data path).</summary>
    public const int UsageExitCode = 2;

    /// <summary>Exit code after Ctrl-C (128 + SIGINT), as shells report it.</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>Creates the shared options; <paramref name="defaultOutput"/> and the data description differ per executable.</summary>
    /// <param name="defaultOutput">Folder that receives one run folder per run.</param>
    /// <param name="dataDescription">What <c>--data</c> points at, and its default.</param>
    /// <param name="oneSeed">Whether the executable runs exactly one seed.</param>
    public CommonOptions(string defaultOutput, string dataDescription, bool oneSeed)
    {
        Output = new Option<string>("--output", "-o")
        {
            Description = "Folder for results: every run writes a new run folder in it (UTC time stamp) and points 'latest' at it.",
            DefaultValueFactory = _ => defaultOutput,
        };
        Output.Validators.Add(r =>
        {
            var path = Value<string>(r);
            if (string.IsNullOrWhiteSpace(path)) r.AddError("--output needs a folder; got an empty value.");
            else if (File.Exists(path)) r.AddError($"--output '{path}' is a file; give a folder.");
        });
        Device = new Option<string>("--device", "-d") { Description = "Torch device: cpu, cuda or cuda:N (CUDA needs a CUDA TorchSharp package).", DefaultValueFactory = _ => "cpu" };
        Device.Validators.Add(r =>
        {
            var d = Value<string>(r);
            if (!DevicePattern().IsMatch(d ?? "")) r.AddError($"--device must be cpu, cuda or cuda:N; got '{d}'.");
        });
        Seeds = new Option<int[]>("--seeds", "-s")
        {
            Description = oneSeed ? "Random seed (one)." : "Seeds; every run is repeated per seed and the table shows mean ± sd.",
            DefaultValueFactory = _ => new[] { 0 },
            AllowMultipleArgumentsPerToken = !oneSeed,
        };
        Seeds.Validators.Add(r =>
        {
            var seeds = Value<int[]>(r);
            if (seeds is null) return;
            if (seeds.Length == 0) r.AddError("--seeds needs at least one seed.");
            else if (oneSeed && seeds.Length > 1) r.AddError($"--seeds: this program runs one seed at a time; got {string.Join(" ", seeds)}.");
            else if (seeds.FirstOrDefault(s => s < 0) is var bad && bad < 0) r.AddError($"--seeds must be non-negative; got {bad}.");
            else if (seeds.Distinct().Count() != seeds.Length) r.AddError($"--seeds lists a seed twice: {string.Join(" ", seeds)}.");
        });
        Threads = AtLeast(new Option<int>("--threads")
        {
            Description = "Torch CPU threads (default: the number of cores).",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        }, 1);
        Resume = new Option<bool>("--resume")
        {
            Description = "Continue the latest run in --output: finished parts are read back, an unfinished one continues from its last checkpoint. Give the same options as the interrupted run.",
        };
        Tiny = new Option<bool>("--tiny") { Description = "A seconds-long configuration (smoke tests); explicit options still win." };
        Data = new Option<string?>("--data") { Description = dataDescription };
        Data.Validators.Add(r =>
        {
            var folder = Value<string?>(r);
            if (folder is not null && !Directory.Exists(folder)) r.AddError($"--data: folder '{folder}' does not exist.");
        });
        NoPlots = new Option<bool>("--no-plots") { Description = "Skip the PNG plots." };
    }

    /// <summary><c>--output</c>, <c>-o</c>: the folder that receives the run folders.</summary>
    public Option<string> Output { get; }

    /// <summary><c>--device</c>, <c>-d</c>: cpu (default), cuda, cuda:N.</summary>
    public Option<string> Device { get; }

    /// <summary><c>--seeds</c>, <c>-s</c>: default 0.</summary>
    public Option<int[]> Seeds { get; }

    /// <summary><c>--threads</c>: default the number of cores.</summary>
    public Option<int> Threads { get; }

    /// <summary><c>--resume</c>: continue the latest run folder.</summary>
    public Option<bool> Resume { get; }

    /// <summary><c>--tiny</c>: a seconds-long configuration.</summary>
    public Option<bool> Tiny { get; }

    /// <summary><c>--data</c>: the folder of the executable's data.</summary>
    public Option<string?> Data { get; }

    /// <summary><c>--no-plots</c>.</summary>
    public Option<bool> NoPlots { get; }

    /// <summary>Adds the shared options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Output, Device, Seeds, Threads, Resume, Tiny, Data, NoPlots })
            command.Options.Add(option);
    }

    /// <summary>The shared settings of a parsed command line.</summary>
    public CommonSettings Read(ParseResult parse) => new(
        parse.GetValue(Output)!, parse.GetValue(Device)!, parse.GetValue(Seeds)!, parse.GetValue(Threads), parse.GetValue(Resume),
        parse.GetValue(Tiny), parse.GetValue(Data), parse.GetValue(NoPlots));

    /// <summary>
    /// The torch device for <paramref name="device"/> (checked by the option's pattern); CUDA must be available.
    /// Call after the native library is loaded.
    /// </summary>
    /// <exception cref="UsageException">CUDA was asked for but is not available.</exception>
    public static TorchSharp.torch.Device ResolveDevice(string device)
    {
        if (device == "cpu") return TorchSharp.torch.CPU;
        if (!TorchSharp.torch.cuda.is_available())
            throw new UsageException($"--device {device}: CUDA is not available (this build references TorchSharp-cpu, or no GPU is visible); use --device cpu.");
        return TorchSharp.torch.device(device);
    }

    /// <summary>Adds a check that the option's value, when given, is at least <paramref name="min"/>.</summary>
    public static Option<T> AtLeast<T>(Option<T> option, double min)
    {
        option.Validators.Add(r =>
        {
            var value = Value<T>(r);
            if (value is null) return;
            var number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
            if (!(number >= min) || double.IsInfinity(number))
                r.AddError($"{option.Name} must be {(min == 1 ? "a positive integer" : min == 0 ? "non-negative and finite" : $"at least {min}")}; got {Convert.ToString(value, CultureInfo.InvariantCulture)}.");
        });
        return option;
    }

    /// <summary>Restricts a text option to <paramref name="values"/>, with a one-line message.</summary>
    public static Option<string> OneOf(Option<string> option, params string[] values)
    {
        option.Validators.Add(r =>
        {
            var value = Value<string>(r);
            if (value is not null && !values.Contains(value))
                r.AddError($"{option.Name} must be {string.Join(", ", values.SkipLast(1))} or {values[^1]}; got '{value}'.");
        });
        return option;
    }

    /// <summary>Adds a check that a number, when given, is positive and finite.</summary>
    public static Option<T> Positive<T>(Option<T> option)
    {
        option.Validators.Add(r =>
        {
            var value = Value<T>(r);
            if (value is null) return;
            var number = Convert.ToDouble(value, CultureInfo.InvariantCulture);
            if (!(number > 0) || double.IsInfinity(number))
                r.AddError($"{option.Name} must be positive and finite; got {Convert.ToString(value, CultureInfo.InvariantCulture)}.");
        });
        return option;
    }

    /// <summary>
    /// An integer option whose default depends on <c>--tiny</c>; the description shows both defaults.
    /// Read it with <see cref="Sized(ParseResult, Option{int?}, int, int, bool)"/>.
    /// </summary>
    public static Option<int?> Sized(string name, string description, int normal, int tiny) =>
        AtLeast(new Option<int?>(name) { Description = $"{description} Default: {normal} ({tiny} with --tiny)." }, 1);

    /// <summary>The value of a <see cref="Sized(string, string, int, int)"/> option.</summary>
    public static int Sized(ParseResult parse, Option<int?> option, int normal, int tiny, bool isTiny) => parse.GetValue(option) ?? (isTiny ? tiny : normal);

    /// <summary>
    /// Parses <paramref name="args"/> and invokes the chosen action. A parse or validation error, or a
    /// <see cref="UsageException"/> from the action, prints one line on <paramref name="error"/> and returns
    /// <see cref="UsageExitCode"/> (no help text: <c>--help</c> shows it).
    /// </summary>
    public static int Invoke(RootCommand root, string[] args, Action<string> error)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            error(Readable(parse.Errors[0].Message) + (parse.Errors.Count > 1 ? $" ({parse.Errors.Count - 1} more error{(parse.Errors.Count > 2 ? "s" : "")}; see --help)" : ""));
            return UsageExitCode;
        }
        try
        {
            // Ctrl-C is the action's to handle (a checkpoint, a partial table): no termination timeout of the parser's own.
            return parse.Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            error(e.Message);
            return UsageExitCode;
        }
    }

    /// <summary>"… as expected type 'System.Nullable`1[System.Int32]'." read as "… as an integer.".</summary>
    private static string Readable(string message) => TypeName().Replace(message, m => m.Groups[1].Value switch
    {
        "Int32" or "Int64" => "as an integer",
        "Double" or "Single" => "as a number",
        var other => $"as {other}",
    });

    [GeneratedRegex(@"as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'")]
    private static partial Regex TypeName();

    /// <summary>The option's value, or default when it did not parse (the parser reports that error itself).</summary>
    public static T? Value<T>(OptionResult result)
    {
        try
        {
            return result.GetValueOrDefault<T>();
        }
        catch (InvalidOperationException)
        {
            return default;
        }
    }

    [GeneratedRegex("^(cpu|cuda(:[0-9]+)?)$")]
    private static partial Regex DevicePattern();
}
