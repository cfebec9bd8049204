using Spectre.Console;

namespace Posteriors.Samples.Tests.Cli;

/// <summary>A console that records what the CLI writes, as a log file would see it: no colours, no live display.</summary>
internal static class TestConsole
{
    public static (IAnsiConsole Console, StringWriter Text) Recorder(int width = 200)
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(text),
        });
        console.Profile.Width = width;
        return (console, text);
    }
}
