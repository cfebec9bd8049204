using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Posteriors.Distributed.Tests.Hosting;

/// <summary>Processes a test starts on loopback ports: recorded by PID and killed in <see cref="DisposeAsync"/>, whatever happened.</summary>
public sealed class LocalProcesses : IAsyncDisposable
{
    private readonly List<Process> _processes = new();

    /// <summary>A loopback port nobody listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The repository's root (where Posteriors.sln is).</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Posteriors.sln"))) return dir.FullName;
        throw new InvalidOperationException($"No Posteriors.sln above {AppContext.BaseDirectory}.");
    }

    /// <summary>The silo host built next to this test assembly's configuration.</summary>
    public static string SiloDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        var dll = Path.Combine(RepositoryRoot(), "src", "Posteriors.Distributed.Silo", "bin", configuration, "net10.0", "posteriors-silo.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("The silo host is not built.", dll);
    }

    /// <summary>Starts <paramref name="file"/> with <paramref name="arguments"/>, output captured.</summary>
    public Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        _processes.Add(process);
        // Drain the pipes so a chatty process never blocks on a full one.
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        return process;
    }

    /// <summary>A running redis-server on a free loopback port, without persistence.</summary>
    public int StartRedis()
    {
        var port = FreePort();
        try
        {
            Start("redis-server", "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Fail("redis-server is not installed (.ci/run and ./scripts/cluster.sh install Debian's redis-server).");
        }
        return port;
    }

    /// <summary>Waits until something listens on <paramref name="port"/>, or fails after <paramref name="seconds"/>.</summary>
    public static async Task WaitForPortAsync(int port, int seconds, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
            catch (SocketException)
            {
                Assert.Fail($"{what} did not listen on 127.0.0.1:{port} within {seconds} s.");
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var p in Enumerable.Reverse(_processes))
        {
            try
            {
                if (!p.HasExited) p.Kill();
                await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException) { }
            finally { p.Dispose(); }
        }
    }
}
