using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Hosting.Internal;

namespace Transport.Tests;

/// <summary>Endpoints:NAME:ReusePort: two hosts on one TCP or UDP port, both serving; and where the key is refused.</summary>
public sealed class ReusePortTests : IAsyncLifetime
{
    private readonly List<IHost> _hosts = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (IHost host in _hosts)
        {
            await host.StopAsync().DefaultTimeout();
            host.Dispose();
        }
    }

    [Fact]
    public async Task TwoHostsOnOneTcpPort_BothServeConnections()
    {
        TransportServer first = await StartAsync("tcp://127.0.0.1:0", reusePort: true);
        int port = ((IPEndPoint)first.Bindings[0].EndPoint).Port;
        TransportServer second = await StartAsync($"tcp://127.0.0.1:{port}", reusePort: true);

        // The kernel hashes each connection's addresses to one of the two listeners: new connections (each one echoed,
        // so served) until both have some. 2^-255 is the chance that 256 all land on one.
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 256 && (first.ActiveConnections == 0 || second.ActiveConnections == 0); i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).DefaultTimeout();
                await client.SendAsync(new byte[] { (byte)i }).DefaultTimeout();
                byte[] echoed = new byte[1];
                Assert.Equal(1, await client.ReceiveAsync(echoed).DefaultTimeout());
                Assert.Equal((byte)i, echoed[0]);
            }

            Assert.True(first.ActiveConnections > 0, "the first host served none of the connections");
            Assert.True(second.ActiveConnections > 0, "the second host served none of the connections");
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task TwoHostsOnOneUdpPort_BothServePeers()
    {
        TransportServer first = await StartAsync("udp://127.0.0.1:0", reusePort: true);
        int port = ((IPEndPoint)((UdpEndPoint)first.Bindings[0].EndPoint).Address).Port;
        TransportServer second = await StartAsync($"udp://127.0.0.1:{port}", reusePort: true);

        var peers = new List<Socket>();
        try
        {
            for (int i = 0; i < 256 && (first.ActiveConnections == 0 || second.ActiveConnections == 0); i++)
            {
                var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                peers.Add(peer);
                peer.Connect(new IPEndPoint(IPAddress.Loopback, port));
                await peer.SendAsync(new byte[] { (byte)i }).DefaultTimeout();
                byte[] echoed = new byte[16];
                Assert.Equal(1, await peer.ReceiveAsync(echoed).DefaultTimeout());
                Assert.Equal((byte)i, echoed[0]);
            }

            Assert.True(first.ActiveConnections > 0, "the first host has no UDP session");
            Assert.True(second.ActiveConnections > 0, "the second host has no UDP session");
        }
        finally
        {
            peers.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task WithoutReusePort_TheSecondHostOnTheSamePortFails()
    {
        TransportServer first = await StartAsync("tcp://127.0.0.1:0", reusePort: true);
        int port = ((IPEndPoint)first.Bindings[0].EndPoint).Port;

        using IHost second = Build($"tcp://127.0.0.1:{port}", reusePort: null);
        await Assert.ThrowsAsync<Microsoft.AspNetCore.Connections.AddressInUseException>(() => second.StartAsync()).DefaultTimeout();
    }

    [Fact]
    public async Task EndpointDefaults_ReusePort_AppliesToTcpAndUdpEndpoints_AndLeavesUnixAlone()
    {
        string directory = Directory.CreateDirectory(EchoServer.NewTempDirectory()).FullName;
        try
        {
            IHost host = ConfiguredHost.Build(new()
            {
                ["Transport:EndpointDefaults:ReusePort"] = "true",
                ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
                ["Transport:Endpoints:tcp:Protocol"] = "echo",
                ["Transport:Endpoints:unix:Url"] = "unix:" + Path.Combine(directory, "echo.sock"),
                ["Transport:Endpoints:unix:Protocol"] = "echo",
            });
            _hosts.Add(host);
            await host.StartAsync().DefaultTimeout();
            int port = ((IPEndPoint)host.Services.GetRequiredService<ITransportServer>().Bindings.Single(b => b.Name == "tcp").EndPoint).Port;

            await StartAsync($"tcp://127.0.0.1:{port}", reusePort: true);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("unix:/tmp/transport-reuseport-test.sock")]
    [InlineData("memory://reuse")]
    public async Task ReusePortOnAnEndpointWithoutAPort_FailsAtStart_NamingKeyAndValue(string url)
    {
        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = url,
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:ReusePort"] = "true",
        });

        Assert.Contains($"Transport:Endpoints:main:ReusePort is true but the endpoint's Url '{url}' has no port to share", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReusePortNotABoolean_FailsAtStart_NamingKeyAndValue()
    {
        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:ReusePort"] = "yes",
        });

        Assert.Contains("Transport:Endpoints:main:ReusePort is 'yes'", ex.Message, StringComparison.Ordinal);
    }

    private IHost Build(string url, bool? reusePort)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Transport:Endpoints:main:Url"] = url,
            ["Transport:Endpoints:main:Protocol"] = "echo",
        };
        if (reusePort is { } value)
        {
            settings["Transport:Endpoints:main:ReusePort"] = value ? "true" : "false";
        }

        return ConfiguredHost.Build(settings);
    }

    private async Task<TransportServer> StartAsync(string url, bool reusePort)
    {
        IHost host = Build(url, reusePort);
        _hosts.Add(host);
        await host.StartAsync().DefaultTimeout();
        return host.Services.GetRequiredService<TransportServer>();
    }
}
