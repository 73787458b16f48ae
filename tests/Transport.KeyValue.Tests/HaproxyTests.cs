using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Xunit.Abstractions;

namespace Transport.KeyValue.Tests;

/// <summary>
/// Debian's HAProxy, unprivileged on loopback, with the shipped examples/haproxy/haproxy.cfg (its ports replaced by
/// free ones), in front of three KeyValueHost processes: PROXY v2 to the servers (LOCAL for the PING/PONG health
/// checks), agent checks against each server's haproxy-agent endpoint, and a rolling restart under load.
/// </summary>
public sealed class HaproxyTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Instances = 3;
    private readonly string _directory = KeyValueServer.NewTempDirectory();
    private readonly int _front = FreePort();
    private readonly int[] _ports = [.. Enumerable.Range(0, Instances).Select(_ => FreePort())];
    private readonly int[] _agentPorts = [.. Enumerable.Range(0, Instances).Select(_ => FreePort())];
    private readonly ExampleProcess?[] _hosts = new ExampleProcess?[Instances];
    private readonly ServiceProvider _client = new ServiceCollection().AddLogging().AddTransport().Services.BuildServiceProvider();
    private ExampleProcess? _haproxy;

    private string AdminSocket => Path.Combine(_directory, "admin.sock");

    // xunit v2 calls IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable: the processes and hosts must go at the end of each test.
    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_haproxy is not null)
        {
            await _haproxy.DisposeAsync();
        }

        foreach (ExampleProcess? host in _hosts)
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }
        }

        await _client.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [ToolFact("haproxy")]
    public async Task ThroughHaproxy_ClientInfoShowsTheClientsOwnAddress()
    {
        await StartAllAsync();
        await using ConnectionContext client = await ConnectAsync();

        Dictionary<string, string> info = ClientCommandsTests.Fields(await client.CallAsync("CLIENT", "INFO"));
        var self = (IPEndPoint)client.LocalEndPoint!;
        // addr is this client's own socket, laddr the address it connected to: HAProxy's frontend, not the server's socket.
        Assert.Equal($"127.0.0.1:{self.Port}", info["addr"]);
        Assert.Equal($"127.0.0.1:{_front}", info["laddr"]);
        Assert.Equal("OK", await client.CallAsync("QUIT"));
    }

    [ToolFact("haproxy")]
    public async Task RollingRestartOfEveryInstance_UnderContinuousSetGetLoad_FailsNoOperation()
    {
        await StartAllAsync();
        using var stop = new CancellationTokenSource();
        var load = new Load();
        Task[] workers = [.. Enumerable.Range(0, 4).Select(w => Task.Run(() => RunWorkerAsync(w, load, stop.Token)))];
        try
        {
            await load.WaitForMoreAsync(50);
            for (int i = 0; i < Instances; i++)
            {
                ExampleProcess old = _hosts[i]!;
                old.Signal("TERM");

                // HAProxy's agent check heard "drain", then the instance stopped accepting, drained and exited cleanly.
                await old.WaitForLineAsync(@"HAProxy agent: now answering 'drain'");
                Assert.Equal(0, await old.WaitForExitAsync().DefaultTimeout());
                Assert.Contains(old.Output, l => l.Contains("Stopped accepting on", StringComparison.Ordinal));
                await old.DisposeAsync();
                _hosts[i] = null;
                Assert.NotEqual("UP", await StatusAsync(i));

                _hosts[i] = await StartInstanceAsync(i);
                await WaitForStatusAsync(i, "UP");
                // The load goes on through the restarted instance and the others.
                await load.WaitForMoreAsync(50);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(workers).DefaultTimeout();
        }

        output.WriteLine($"{load.Operations} operations through HAProxy during the rolling restart, {load.Failures.Count} failed.");
        Assert.True(load.Failures.IsEmpty, $"{load.Failures.Count} of {load.Operations} operations failed: {string.Join(" | ", load.Failures.Take(5))}");
        Assert.All(_hosts, h => Assert.DoesNotContain(h!.Output, l => l.Contains("fail:", StringComparison.Ordinal)));
    }

    /// <summary>
    /// One client: connections of a few SET/GET pairs each (the pool of a typical client, recycled), through HAProxy,
    /// until stopped. Every error, wrong reply or refused connection is a failed operation.
    /// </summary>
    private async Task RunWorkerAsync(int worker, Load load, CancellationToken stop)
    {
        long n = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using ConnectionContext client = await ConnectAsync();
                for (int i = 0; i < 5; i++, n++)
                {
                    string key = $"w{worker}:{n}";
                    string value = $"v{n}";
                    Expect("OK", await client.CallAsync("SET", key, value), "SET", load);
                    Expect(value, await client.CallAsync("GET", key), "GET", load);
                }

                Expect("OK", await client.CallAsync("QUIT"), "QUIT", load);
            }
            catch (Exception ex)
            {
                load.Failures.Add($"worker {worker}, operation {n}: {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    private static void Expect(string expected, string reply, string command, Load load)
    {
        if (reply != expected)
        {
            load.Failures.Add($"{command}: expected '{expected}', got '{reply}'");
        }

        load.Completed();
    }

    private async Task<ConnectionContext> ConnectAsync() =>
        await _client.GetRequiredService<IConnectionFactory>().ConnectAsync(new IPEndPoint(IPAddress.Loopback, _front)).AsTask().DefaultTimeout();

    private async Task StartAllAsync()
    {
        Directory.CreateDirectory(_directory);
        for (int i = 0; i < Instances; i++)
        {
            _hosts[i] = await StartInstanceAsync(i);
        }

        string config = await File.ReadAllTextAsync(Path.Combine(ExampleProcess.RepoRoot, "examples", "haproxy", "haproxy.cfg"));
        var replacements = new List<(string From, string To)>
        {
            ("/tmp/transport/haproxy-admin.sock", AdminSocket),
            ("bind 127.0.0.1:6379", $"bind 127.0.0.1:{_front}"),
            // Checks ten times as often as the example, so the test's drain delay can be short.
            ("check inter 1s", "check inter 100ms"),
            ("agent-inter 1s", "agent-inter 100ms"),
        };
        for (int i = 0; i < Instances; i++)
        {
            replacements.Add(($"127.0.0.1:638{i + 1} agent-port 639{i + 1}", $"127.0.0.1:{_ports[i]} agent-port {_agentPorts[i]}"));
        }

        foreach ((string from, string to) in replacements)
        {
            Assert.Contains(from, config, StringComparison.Ordinal);
            config = config.Replace(from, to, StringComparison.Ordinal);
        }

        string path = Path.Combine(_directory, "haproxy.cfg");
        await File.WriteAllTextAsync(path, config);
        _haproxy = ExampleProcess.StartProgram(Tool.RequireOnPath("haproxy"), "-f", path, "-db");
        for (int i = 0; i < Instances; i++)
        {
            await WaitForStatusAsync(i, "UP");
        }
    }

    private async Task<ExampleProcess> StartInstanceAsync(int i)
    {
        string port = _ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        ExampleProcess host = ExampleProcess.Start("KeyValueHost",
            $"--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:{port}",
            "--Transport:Endpoints:tcp:ProxyProtocol:Mode=Required",
            "--Transport:Endpoints:tcp:ProxyProtocol:TrustedProxies:0=127.0.0.1",
            $"--Transport:Endpoints:unix:Url=unix:{Path.Combine(_directory, $"kv{i}.sock")}",
            $"--Transport:Endpoints:agent:Url=tcp://127.0.0.1:{_agentPorts[i]}",
            "--Transport:Endpoints:agent:Protocol=haproxy-agent",
            "--Transport:HaproxyAgent:Endpoints:0=tcp",
            "--Transport:DrainDelay=00:00:01");
        try
        {
            await host.WaitForLineAsync($@"Listening on tcp://127\.0\.0\.1:{port} \(endpoint 'tcp', protocol 'kv'\)");
            await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:\d+ \(endpoint 'agent', protocol 'haproxy-agent'\)");
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>HAProxy's own view of server kv(i+1), from its runtime API (<c>show stat</c>): UP, DOWN, DRAIN (agent)…</summary>
    private async Task<string?> StatusAsync(int i)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(AdminSocket));
        }
        catch (SocketException)
        {
            return null; // HAProxy is not up yet.
        }

        await socket.SendAsync("show stat\n"u8.ToArray());
        var text = new StringBuilder();
        byte[] buffer = new byte[8192];
        int read;
        while ((read = await socket.ReceiveAsync(buffer)) > 0)
        {
            text.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        // CSV: pxname, svname, … status is the 18th column.
        string? line = text.ToString().Split('\n').FirstOrDefault(l => l.StartsWith($"kv,kv{i + 1},", StringComparison.Ordinal));
        return line?.Split(',')[17];
    }

    private async Task WaitForStatusAsync(int i, string status)
    {
        string? last = null;
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        while ((last = await StatusAsync(i)) != status)
        {
            Assert.False(timeout.IsCancellationRequested, $"HAProxy still says kv{i + 1} is '{last}', not '{status}'.");
            Assert.False(_haproxy!.HasExited, "haproxy exited: " + string.Join('\n', _haproxy.Output));
            await Task.Delay(20);
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>The workers' shared count: completed operations, and every failure.</summary>
    private sealed class Load
    {
        private readonly object _lock = new();
        private readonly List<(long Target, TaskCompletionSource Reached)> _waiters = [];
        private long _operations;

        public System.Collections.Concurrent.ConcurrentBag<string> Failures { get; } = [];

        public long Operations => Interlocked.Read(ref _operations);

        public void Completed()
        {
            long now = Interlocked.Increment(ref _operations);
            lock (_lock)
            {
                _waiters.RemoveAll(w => w.Target <= now && w.Reached.TrySetResult());
            }
        }

        /// <summary>Waits until <paramref name="count"/> more operations have completed.</summary>
        public Task WaitForMoreAsync(long count)
        {
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_lock)
            {
                _waiters.Add((Interlocked.Read(ref _operations) + count, reached));
            }

            return reached.Task.DefaultTimeout();
        }
    }
}
