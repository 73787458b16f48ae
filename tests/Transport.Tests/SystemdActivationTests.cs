using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Transport.Tests;

/// <summary>
/// examples/EchoHost started as systemd starts a socket-activated service, without root or a running systemd:
/// <c>systemd-socket-activate</c> binds the sockets and execs the host with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, and a
/// datagram socket the test owns stands in for systemd's NOTIFY_SOCKET.
/// </summary>
public sealed class SystemdActivationTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateDirectory(EchoServer.NewTempDirectory()).FullName;
    private readonly Socket _notify = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly string _notifyName = "@transport-test-" + Guid.NewGuid().ToString("N");
    private readonly List<string> _notifications = [];

    public Task InitializeAsync()
    {
        // The abstract namespace, as systemd itself uses: '@' in NOTIFY_SOCKET is a leading NUL.
        _notify.Bind(new UnixDomainSocketEndPoint("\0" + _notifyName[1..]));
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        _notify.Dispose();
        Directory.Delete(_directory, recursive: true);
        return Task.CompletedTask;
    }

    [ToolFact("systemd-socket-activate")]
    public async Task TcpUnixAndUdpSockets_AreServed_AndSystemdIsToldReadyStatusAndStopping()
    {
        string activate = Tool.RequireOnPath("systemd-socket-activate");
        int port = FreePort();
        string unixPath = Path.Combine(_directory, "echo.sock");

        // --datagram is for all of one instance's sockets: an outer one passes the UDP socket through an inner one (fd 3),
        // which adds TCP and Unix (fds 4 and 5). Each waits for traffic before it execs the next.
        await using ExampleProcess host = ExampleProcess.StartProgram(activate, [
            "--datagram", "-l", $"127.0.0.1:{port}", "--fdname=udp", "-E", "NOTIFY_SOCKET=" + _notifyName,
            activate, "-l", $"127.0.0.1:{port}", "-l", unixPath, "--fdname=udp:tcp:unix", "-E", "NOTIFY_SOCKET",
            "dotnet", ExampleProcess.AssemblyPath("EchoHost"),
            "--Transport:Endpoints:tcp:Url=systemd:tcp",
            "--Transport:Endpoints:unix:Url=systemd:unix",
            "--Transport:Endpoints:udp:Url=systemd:udp",
        ]);
        await host.WaitForLineAsync($@"Listening on 127\.0\.0\.1:{port} as 3\.");

        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Connect(new IPEndPoint(IPAddress.Loopback, port));
        await peer.SendAsync("early"u8.ToArray()).DefaultTimeout();

        string ready = await NextNotificationAsync(m => m.Contains("READY=1", StringComparison.Ordinal));
        Assert.Contains("STATUS=Serving ", ready, StringComparison.Ordinal);
        Assert.Contains("on 3 endpoint(s)", ready, StringComparison.Ordinal);
        Assert.Contains(host.Output, l => l.Contains("Endpoint 'udp' takes over systemd:udp (descriptor 3, a UDP socket)", StringComparison.Ordinal));
        Assert.Contains(host.Output, l => l.Contains("Endpoint 'tcp' takes over systemd:tcp (descriptor 4, a listening TCP socket)", StringComparison.Ordinal));
        Assert.Contains(host.Output, l => l.Contains("Endpoint 'unix' takes over systemd:unix (descriptor 5, a listening Unix socket)", StringComparison.Ordinal));

        // The datagram that woke the service up is served too: it waited in the socket's queue.
        byte[] buffer = new byte[64];
        int received = await peer.ReceiveAsync(buffer).DefaultTimeout();
        Assert.Equal("early", Encoding.ASCII.GetString(buffer, 0, received));
        await AssertEchoesAsync(new IPEndPoint(IPAddress.Loopback, port), AddressFamily.InterNetwork);
        await AssertEchoesAsync(new UnixDomainSocketEndPoint(unixPath), AddressFamily.Unix);

        host.Signal("TERM");
        string stopping = await NextNotificationAsync(m => m.Contains("STOPPING=1", StringComparison.Ordinal));
        Assert.Contains("EXTEND_TIMEOUT_USEC=", stopping, StringComparison.Ordinal);
        Assert.Contains("STATUS=Draining: ", stopping, StringComparison.Ordinal);
        Assert.Equal(0, await host.WaitForExitAsync());

        // systemd made the socket file and removes it with the .socket unit; the service never does.
        Assert.True(File.Exists(unixPath), "the host removed a Unix socket file it did not create");
    }

    [ToolFact("systemd-socket-activate")]
    public async Task AcceptYes_TheHandedOverConnectionRunsThroughTheEndpoint_ThenTheHostExits()
    {
        string activate = Tool.RequireOnPath("systemd-socket-activate");
        int port = FreePort();
        await using ExampleProcess activator = ExampleProcess.StartProgram(activate, [
            "--accept", "-l", $"127.0.0.1:{port}", "-E", "NOTIFY_SOCKET=" + _notifyName,
            "dotnet", ExampleProcess.AssemblyPath("EchoHost"),
            "--Transport:Endpoints:tcp:Url=fd:3",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "unused.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
        ]);
        await activator.WaitForLineAsync($@"Listening on 127\.0\.0\.1:{port} as 3\.");

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).DefaultTimeout();
        await NextNotificationAsync(m => m.Contains("READY=1", StringComparison.Ordinal));
        Assert.Contains(activator.Output, l => l.Contains("Endpoint 'tcp' takes over fd:3 (descriptor 3, a connected TCP socket (Accept=yes))", StringComparison.Ordinal));

        await client.SendAsync("once"u8.ToArray()).DefaultTimeout();
        byte[] echoed = new byte[4];
        int total = 0;
        while (total < 4)
        {
            int read = await client.ReceiveAsync(echoed.AsMemory(total)).DefaultTimeout();
            Assert.True(read > 0, "closed before the echo");
            total += read;
        }

        Assert.Equal("once"u8.ToArray(), echoed);
        client.Shutdown(SocketShutdown.Send);

        // One instance per connection, as inetd: when it ends, the host stops (systemd-socket-activate itself keeps listening).
        await activator.WaitForLineAsync("the connection handed over by systemd \\(Accept=yes\\) has ended; stopping the host");
        await NextNotificationAsync(m => m.Contains("STOPPING=1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watchdog_IsPingedAtHalfWATCHDOG_USEC_WhileServing()
    {
        // env(1) sets the variables and execs dotnet: WATCHDOG_PID is then the host's own pid, as systemd sets it.
        await using ExampleProcess host = ExampleProcess.StartProgram("/usr/bin/env", [
            "NOTIFY_SOCKET=" + _notifyName, "WATCHDOG_USEC=400000",
            "dotnet", ExampleProcess.AssemblyPath("EchoHost"),
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
        ]);

        await NextNotificationAsync(m => m.Contains("READY=1", StringComparison.Ordinal));
        int pings = 0;
        while (pings < 3)
        {
            await NextNotificationAsync(m => m == "WATCHDOG=1");
            _notifications.RemoveAll(m => m == "WATCHDOG=1");
            pings++;
        }

        Assert.Contains(host.Output, l => l.Contains("WATCHDOG=1 every 0.2 s", StringComparison.Ordinal));
        Assert.Equal(0, await host.StopAsync());
    }

    private async Task<string> NextNotificationAsync(Func<string, bool> match)
    {
        foreach (string seen in _notifications)
        {
            if (match(seen))
            {
                return seen;
            }
        }

        byte[] buffer = new byte[4096];
        while (true)
        {
            int received = await _notify.ReceiveAsync(buffer).DefaultTimeout();
            string message = Encoding.UTF8.GetString(buffer, 0, received);
            _notifications.Add(message);
            if (match(message))
            {
                return message;
            }
        }
    }

    internal static async Task AssertEchoesAsync(EndPoint address, AddressFamily family)
    {
        using var client = new Socket(family, SocketType.Stream, family == AddressFamily.Unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        await client.ConnectAsync(address).DefaultTimeout();
        await client.SendAsync("hello"u8.ToArray()).DefaultTimeout();
        byte[] echoed = new byte[5];
        int total = 0;
        while (total < 5)
        {
            int read = await client.ReceiveAsync(echoed.AsMemory(total)).DefaultTimeout();
            Assert.True(read > 0, "closed before the echo");
            total += read;
        }

        Assert.Equal("hello"u8.ToArray(), echoed);
    }

    /// <summary>
    /// A port free for both TCP and UDP on the loopback: systemd-socket-activate takes no port 0. The kernel hands out
    /// ephemeral ports in turn, so one just released is not handed to someone else at once.
    /// </summary>
    private static int FreePort()
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // Taken for UDP: try another.
            }
        }

        throw new InvalidOperationException("no port free for both TCP and UDP on 127.0.0.1");
    }
}
