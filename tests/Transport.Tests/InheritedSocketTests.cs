using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Hosting.Internal.Systemd;

namespace Transport.Tests;

/// <summary>
/// Inherited sockets: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES as systemd sets them, the type and family checks, and
/// <c>fd:N</c> endpoints in-process (a descriptor the test duplicated for the host, as a parent process would pass one).
/// </summary>
public sealed class InheritedSocketTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateDirectory(EchoServer.NewTempDirectory()).FullName;
    private readonly List<IHost> _hosts = [];
    private readonly List<Socket> _sockets = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (IHost host in _hosts)
        {
            await host.StopAsync().DefaultTimeout();
            host.Dispose();
        }

        _sockets.ForEach(s => s.Dispose());
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void ListenFds_NamesEachDescriptorFrom3()
    {
        ListenFds fds = ListenFds.Parse("42", "3", "web:dns:admin", currentPid: 42);

        Assert.Null(fds.Problem);
        Assert.Equal([(3, "web"), (4, "dns"), (5, "admin")], fds.Sockets);
        Assert.Equal(4, fds.Find("dns", out _));
        Assert.Equal(-1, fds.Find("nope", out int count));
        Assert.Equal(0, count);
    }

    [Fact]
    public void ListenFds_WithoutNames_AreUnknown_AsSystemdNamesThem()
    {
        ListenFds fds = ListenFds.Parse("42", "2", null, currentPid: 42);

        Assert.Equal([(3, "unknown"), (4, "unknown")], fds.Sockets);
    }

    [Fact]
    public void ListenFds_ForAnotherProcess_AreIgnored_SayingWhose()
    {
        ListenFds fds = ListenFds.Parse("41", "2", "a:b", currentPid: 42);

        Assert.Empty(fds.Sockets);
        Assert.Equal("LISTEN_PID is 41, not this process (42): the sockets were passed to another process and were ignored", fds.Problem);
    }

    [Theory]
    [InlineData("x", "1", null, "LISTEN_PID 'x' is not a process id")]
    [InlineData("42", "two", null, "LISTEN_FDS 'two' is not a number of descriptors")]
    [InlineData("42", "-1", null, "LISTEN_FDS '-1' is not a number of descriptors")]
    [InlineData("42", "2", "web", "LISTEN_FDNAMES has 1 name(s) for LISTEN_FDS=2")]
    public void ListenFds_Malformed_AreIgnored_SayingWhy(string pid, string count, string? names, string expected)
    {
        ListenFds fds = ListenFds.Parse(pid, count, names, currentPid: 42);

        Assert.Empty(fds.Sockets);
        Assert.StartsWith(expected, fds.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ListenFds_Unset_AreNone_WithoutAProblem()
    {
        ListenFds fds = ListenFds.Parse(null, null, null, currentPid: 42);

        Assert.Empty(fds.Sockets);
        Assert.Null(fds.Problem);
    }

    [Fact]
    public void SystemdName_NotPassed_SaysWhatWas()
    {
        ListenFds fds = ListenFds.Parse("42", "1", "web", currentPid: 42);

        Assert.False(InheritedSockets.TryResolve("systemd:dns", fds, out _, out string? problem));
        Assert.Equal("no socket named 'dns' was passed by systemd (LISTEN_FDNAMES; passed: 3 (web))", problem);
        Assert.True(InheritedSockets.TryResolve("systemd:web", fds, out int fd, out _));
        Assert.Equal(3, fd);
    }

    [Fact]
    public void SystemdName_TwiceInLISTEN_FDNAMES_IsRefused()
    {
        ListenFds fds = ListenFds.Parse("42", "2", "web:web", currentPid: 42);

        Assert.False(InheritedSockets.TryResolve("systemd:web", fds, out _, out string? problem));
        Assert.StartsWith("2 sockets are named 'web' in LISTEN_FDNAMES", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fd:2", "expected fd:N with N a descriptor number of 3 or more")]
    [InlineData("fd:abc", "expected fd:N")]
    [InlineData("systemd:", "expected systemd:NAME")]
    [InlineData("systemd:a:b", "expected systemd:NAME")]
    public async Task MalformedInheritedUrl_FailsAtStart_NamingKeyAndValue(string url, string expected)
    {
        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(Endpoint(url));

        Assert.Contains($"Transport:Endpoints:main:Url '{url}' is not a valid endpoint URL: {expected}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_TellsListeningStreamConnectedStreamAndDatagramApart()
    {
        using Socket tcp = Listening(AddressFamily.InterNetwork);
        using Socket unix = ListeningUnix(Path.Combine(_directory, "l.sock"));
        using var udp = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(tcp.LocalEndPoint!);

        AssertKind(tcp, InheritedSocketKind.ListeningStream, AddressFamily.InterNetwork);
        AssertKind(unix, InheritedSocketKind.ListeningStream, AddressFamily.Unix);
        AssertKind(udp, InheritedSocketKind.Datagram, AddressFamily.InterNetworkV6);
        AssertKind(client, InheritedSocketKind.ConnectedStream, AddressFamily.InterNetwork);
    }

    [Fact]
    public void Inspect_RefusesWhatNoTransportServes_SayingWhatItIs()
    {
        using var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var unixDatagram = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        using var seqpacket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        using FileStream file = File.Create(Path.Combine(_directory, "not-a-socket"));

        AssertRefused(Fd(idle), "is a stream socket of family AF_INET that neither listens nor is connected");
        AssertRefused(Fd(unixDatagram), "is a datagram socket of family AF_UNIX; the UDP transport serves IPv4 and IPv6 datagram sockets only");
        AssertRefused(Fd(seqpacket), "is a seqpacket socket of family AF_UNIX; expected a listening stream socket");
        AssertRefused((int)file.SafeFileHandle.DangerousGetHandle(), "is open but is not a socket");
        AssertRefused(int.MaxValue - 1, "is not open in this process");
    }

    [Fact]
    public async Task FdOfAListeningTcpSocket_ServesTheEndpointsProtocol()
    {
        using Socket listening = Listening(AddressFamily.InterNetwork);
        IHost host = await StartAsync(Endpoint($"fd:{Dup(listening)}"));
        var binding = host.Services.GetRequiredService<ITransportServer>().Bindings.Single();
        Assert.Equal(listening.LocalEndPoint, binding.EndPoint);
        listening.Close();

        await AssertEchoesAsync((IPEndPoint)binding.EndPoint);
    }

    [Fact]
    public async Task FdOfAUdpSocket_ServesEachPeerAsASession()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var address = (IPEndPoint)udp.LocalEndPoint!;
        IHost host = await StartAsync(Endpoint($"fd:{Dup(udp)}"));
        udp.Close();
        Assert.Equal(new UdpEndPoint(address), host.Services.GetRequiredService<ITransportServer>().Bindings.Single().EndPoint);

        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Connect(address);
        await peer.SendAsync("ping"u8.ToArray()).DefaultTimeout();
        byte[] echoed = new byte[16];
        int received = await peer.ReceiveAsync(echoed).DefaultTimeout();
        Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(echoed, 0, received));
    }

    [Fact]
    public async Task FdOfAUnixSocket_IsServed_AndItsFileIsLeftInPlaceAtStop()
    {
        string path = Path.Combine(_directory, "inherited.sock");
        using Socket listening = ListeningUnix(path);
        // Still open here: .NET removes the file when the Socket that bound it is disposed.
        IHost host = ConfiguredHost.Build(Endpoint($"fd:{Dup(listening)}"));
        await host.StartAsync().DefaultTimeout();

        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(path)).DefaultTimeout();
            await client.SendAsync("hi"u8.ToArray()).DefaultTimeout();
            byte[] echoed = new byte[2];
            Assert.Equal(2, await client.ReceiveAsync(echoed).DefaultTimeout());
        }

        await host.StopAsync().DefaultTimeout();
        host.Dispose();

        // Whoever created the socket file owns it (systemd removes it with the .socket unit): never unlinked by us.
        Assert.True(File.Exists(path), "the inherited socket's file was removed");
    }

    [Fact]
    public async Task FdOfAConnectedSocket_RunsThatOneConnection_ThenStopsTheHost()
    {
        // Accept=yes: the service gets a connection, not a listener.
        using Socket listening = Listening(AddressFamily.InterNetwork);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listening.LocalEndPoint!).DefaultTimeout();
        using Socket accepted = await listening.AcceptAsync().DefaultTimeout();
        IHost host = ConfiguredHost.Build(Endpoint($"fd:{Dup(accepted)}"));
        await host.StartAsync().DefaultTimeout();
        accepted.Close();
        var stopping = new TaskCompletionSource();
        host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());

        await client.SendAsync("one"u8.ToArray()).DefaultTimeout();
        byte[] echoed = new byte[3];
        Assert.Equal(3, await client.ReceiveAsync(echoed).DefaultTimeout());
        client.Shutdown(SocketShutdown.Send);

        await stopping.Task.DefaultTimeout();
        await host.StopAsync().DefaultTimeout();
        host.Dispose();
    }

    [Fact]
    public async Task FdOfADatagramSocket_ForAStreamOnlyProtocol_FailsAtStart_NamingKeyAndValue()
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int fd = Fd(udp);

        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = $"fd:{fd}",
            ["Transport:Endpoints:main:Protocol"] = "stream",
        }, (_, transport) => transport.AddProtocol<StreamOnlyProtocol>("stream"));

        Assert.Contains($"Transport:Endpoints:main:Protocol 'stream' needs a byte stream and cannot serve the datagram endpoint 'fd:{fd}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FdThatIsNotASocket_FailsAtStart_NamingKeyAndValue()
    {
        using FileStream file = File.Create(Path.Combine(_directory, "plain"));
        int fd = (int)file.SafeFileHandle.DangerousGetHandle();

        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(Endpoint($"fd:{fd}"));

        Assert.Contains($"Transport:Endpoints:main:Url 'fd:{fd}': descriptor {fd} is open but is not a socket.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoEndpointsOnOneDescriptor_FailAtStart_NamingBoth()
    {
        using Socket listening = Listening(AddressFamily.InterNetwork);
        int fd = Fd(listening);

        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:a:Url"] = $"fd:{fd}",
            ["Transport:Endpoints:a:Protocol"] = "echo",
            ["Transport:Endpoints:b:Url"] = $"fd:{fd}",
            ["Transport:Endpoints:b:Protocol"] = "echo",
        });

        Assert.Contains($"Transport:Endpoints:b:Url 'fd:{fd}' is the same socket (descriptor {fd}) as endpoint 'a'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SystemdNameNotPassed_FailsAtStart_NamingKeyAndValue()
    {
        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(Endpoint("systemd:web"));

        Assert.Contains("Transport:Endpoints:main:Url 'systemd:web': no socket named 'web' was passed by systemd", ex.Message, StringComparison.Ordinal);
    }

    [StreamTransportOnly]
    private sealed class StreamOnlyProtocol : Microsoft.AspNetCore.Connections.ConnectionHandler
    {
        public override Task OnConnectedAsync(Microsoft.AspNetCore.Connections.ConnectionContext connection) => Task.CompletedTask;
    }

    private static Dictionary<string, string?> Endpoint(string url) => new()
    {
        ["Transport:Endpoints:main:Url"] = url,
        ["Transport:Endpoints:main:Protocol"] = "echo",
    };

    private async Task<IHost> StartAsync(Dictionary<string, string?> settings)
    {
        IHost host = ConfiguredHost.Build(settings);
        _hosts.Add(host);
        await host.StartAsync().DefaultTimeout();
        return host;
    }

    private static Task AssertEchoesAsync(IPEndPoint address) => SystemdActivationTests.AssertEchoesAsync(address, address.AddressFamily);

    private static Socket Listening(AddressFamily family)
    {
        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        socket.Listen();
        return socket;
    }

    private static Socket ListeningUnix(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen();
        return socket;
    }

    private static void AssertKind(Socket socket, InheritedSocketKind kind, AddressFamily family)
    {
        Assert.True(SocketInspector.TryInspect(Fd(socket), out InheritedSocketKind actual, out AddressFamily actualFamily, out string? problem), problem);
        Assert.Equal(kind, actual);
        Assert.Equal(family, actualFamily);
    }

    private static void AssertRefused(int fd, string expected)
    {
        Assert.False(SocketInspector.TryInspect(fd, out _, out _, out string? problem));
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }

    private static int Fd(Socket socket) => (int)socket.SafeHandle.DangerousGetHandle();

    /// <summary>A descriptor of the same socket for the host to own, as a parent process passes one: the test's Socket keeps its own.</summary>
    private static int Dup(Socket socket)
    {
        int fd = DupDescriptor(Fd(socket));
        Assert.True(fd >= 0, $"dup failed: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    [DllImport("libc", EntryPoint = "dup", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int DupDescriptor(int fd);
}
