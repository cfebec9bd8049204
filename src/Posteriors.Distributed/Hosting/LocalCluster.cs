using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Posteriors.Distributed.Hosting;

/// <summary>
/// A cluster on this machine's loopback interface for tests and benchmarks: a redis-server on a free port and silo
/// processes (<c>posteriors-silo</c>) started on demand. Every process is recorded by PID and killed on dispose, whatever
/// happened. <c>scripts/cluster.sh</c> is the same thing for a shell.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<Process> _processes = new();

    private LocalCluster(int redisPort) => RedisPort = redisPort;

    /// <summary>The Redis port.</summary>
    public int RedisPort { get; }

    /// <summary>The cluster's address for <see cref="ClusterConnection.ConnectAsync"/>: <c>127.0.0.1:port</c> of Redis.</summary>
    public string Address => $"127.0.0.1:{RedisPort}";

    /// <summary>Starts redis-server (no persistence) on a free loopback port and waits until it listens.</summary>
    /// <exception cref="FileNotFoundException">redis-server is not installed.</exception>
    public static async Task<LocalCluster> StartRedisAsync(TimeSpan? timeout = null)
    {
        var cluster = new LocalCluster(FreePort());
        try
        {
            cluster.Start("redis-server", "--port", cluster.RedisPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new FileNotFoundException("redis-server is not installed: install Debian's redis-server package (.ci/run and scripts/cluster.sh do).", "redis-server", e);
        }
        try { await WaitForPortAsync(cluster.RedisPort, timeout ?? TimeSpan.FromSeconds(20), "redis-server"); }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>
    /// Starts a silo process on free loopback ports and, unless <paramref name="wait"/> is false, waits until its gateway
    /// accepts connections.
    /// </summary>
    /// <param name="torchThreads">libtorch threads of the silo.</param>
    /// <param name="wait">Whether to wait for the gateway.</param>
    /// <param name="arguments">More silo options (e.g. <c>--service-id</c>).</param>
    public async Task<Process> StartSiloAsync(int torchThreads = 1, bool wait = true, params string[] arguments)
    {
        var gateway = FreePort();
        var process = StartInOwnSession("dotnet", new[] { FindSiloHost(), "--redis", Address, "--address", "127.0.0.1", "--silo-port", FreePort().ToString(),
            "--gateway-port", gateway.ToString(), "--torch-threads", torchThreads.ToString() }.Concat(arguments).ToArray());
        if (wait) await WaitForPortAsync(gateway, TimeSpan.FromSeconds(90), $"The silo (pid {process.Id})");
        return process;
    }

    /// <summary>
    /// The silo host: <c>$POSTERIORS_SILO</c>, or <c>posteriors-silo.dll</c> built in this repository (the configuration of
    /// the calling program first).
    /// </summary>
    /// <exception cref="FileNotFoundException">No silo host is built.</exception>
    public static string FindSiloHost()
    {
        if (Environment.GetEnvironmentVariable("POSTERIORS_SILO") is { Length: > 0 } configured) return configured;
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Posteriors.sln"))) continue;
            foreach (var c in new[] { configuration, configuration == "Release" ? "Debug" : "Release" })
            {
                var dll = Path.Combine(dir.FullName, "src", "Posteriors.Distributed.Silo", "bin", c, "net10.0", "posteriors-silo.dll");
                if (File.Exists(dll)) return dll;
            }
        }
        throw new FileNotFoundException(
            "No silo host found: build src/Posteriors.Distributed.Silo or set POSTERIORS_SILO to its posteriors-silo.dll.", "posteriors-silo.dll");
    }

    /// <summary>A loopback port nobody listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits until something listens on loopback <paramref name="port"/>.</summary>
    /// <exception cref="TimeoutException">Nothing listened within <paramref name="timeout"/>; the message names <paramref name="what"/>.</exception>
    public static async Task WaitForPortAsync(int port, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < timeout)
            {
                await Task.Delay(250);
            }
            catch (SocketException e)
            {
                throw new TimeoutException($"{what} did not listen on 127.0.0.1:{port} within {timeout.TotalSeconds:0} s.", e);
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="file"/> as the leader of a session of its own where <c>setsid</c> exists (Linux): the kernel's
    /// autogroup scheduling shares the cores between sessions, so silos in the caller's session would share one session's
    /// CPU time with the caller on a busy machine, where silos on their own machines would not. setsid runs the program
    /// in its own process (same PID), so the recorded PID stays the silo's.
    /// </summary>
    private Process StartInOwnSession(string file, params string[] arguments) =>
        OperatingSystem.IsLinux() && File.Exists("/usr/bin/setsid") ? Start("/usr/bin/setsid", [file, .. arguments]) : Start(file, arguments);

    /// <summary>Starts <paramref name="file"/>, standard output drained, standard error kept for the caller.</summary>
    private Process Start(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        _processes.Add(process);
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        return process;
    }

    /// <summary>Kills every process this cluster started (silos first), by PID.</summary>
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
        _processes.Clear();
    }
}
