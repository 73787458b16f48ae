using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// Limits:MaxConnectionLifetime: a connection open that long, busy or not, is asked to close and aborted after the grace
/// period, by the idle timeout's sweep; on a fake clock, and once on the real one with a real socket.
/// </summary>
public sealed class MaxConnectionLifetimeTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _time = new();

    [Theory]
    [MemberData(nameof(TestTransports.Streams), MemberType = typeof(TestTransports))]
    public async Task BusyEcho_PastItsLifetime_IsAskedToClose_ThenAborted_AndCounted(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(transport, l => l.MaxConnectionLifetime = Lifetime);
        using var counted = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connections.max_lifetime_reached");
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        await using ConnectionContext client = await server.ConnectAsync();

        // Traffic does not keep it alive: that is the idle timeout's business.
        for (int i = 0; i < 3; i++)
        {
            await IdleTimeoutTests.PingAsync(client);
            _time.Advance(Lifetime / 3 - TimeSpan.FromSeconds(1));
        }

        Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == 100);
        await IdleTimeoutTests.PingAsync(client);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 100);
        _time.Advance(TransportLimits.IdleCloseGracePeriod + TimeSpan.FromSeconds(1));
        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 101);

        await IdleTimeoutTests.ReceiveEndAsync(client);
        Assert.Equal("max_connection_lifetime", Assert.Single(counted.GetMeasurementSnapshot()).Tags["error.type"]);
        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("max_connection_lifetime", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
        Assert.Contains(server.Logs.Entries, e => e.Message.EndsWith("runs each connection through: max-connection-lifetime → protocol 'under-test'.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProtocolThatHonoursTheCloseRequest_ClosesGracefully_WithoutAbort()
    {
        await using TransportTestServer server = await StartAsync<IdleTimeoutTests.GoodbyeProtocol>(TestTransport.Tcp, l => l.MaxConnectionLifetime = Lifetime);
        await using ConnectionContext client = await server.ConnectAsync();
        Assert.Equal("hi "u8.ToArray(), await client.ReceiveExactlyAsync(3).DefaultTimeout());
        Task<byte[]> received = client.ReceiveToEndAsync();

        _time.Advance(Lifetime + TimeSpan.FromSeconds(1));

        Assert.Equal("bye", Encoding.ASCII.GetString(await received.DefaultTimeout()));
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 4));
        _time.Advance(TransportLimits.IdleCloseGracePeriod * 2);
        Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == 101);
    }

    [Fact]
    public async Task WithAnIdleTimeoutToo_WhicheverComesFirstCloses_AndThePipelineNamesBoth()
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(TestTransport.Tcp, l =>
        {
            l.IdleTimeout = TimeSpan.FromSeconds(10);
            l.MaxConnectionLifetime = Lifetime;
        });
        await using ConnectionContext busy = await server.ConnectAsync();
        await using ConnectionContext quiet = await server.ConnectAsync();
        await IdleTimeoutTests.PingAsync(busy);
        await IdleTimeoutTests.PingAsync(quiet);

        for (int i = 0; i < 5; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(7));
            await IdleTimeoutTests.PingAsync(busy);
            if (i == 1)
            {
                // 14 s without a byte: the idle one was asked, the busy one not yet.
                Assert.Single(server.Logs.Entries, e => e.EventId.Id == 50);
                Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == 100);
            }
        }

        // 35 s: the busy one reached its lifetime.
        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 100);
        Assert.Contains(server.Logs.Entries, e => e.Message.EndsWith("runs each connection through: idle-timeout → max-connection-lifetime → protocol 'under-test'.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerWideLifetime_AppliesToAnEndpointWithoutItsOwn_AndAnEndpointCanTurnItOff()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Host.Services.Configure<TransportServerOptions>(o => o.Limits.MaxConnectionLifetime = Lifetime);
            b.Transport.AddProtocol<EchoProtocol>("under-test")
                .Listen(b.ListenUrl(TestTransport.Tcp), "under-test")
                .Listen(b.ListenUrl(TestTransport.Memory), "under-test", l => l.MaxConnectionLifetime = TimeSpan.Zero);
        });

        Assert.Contains(server.Logs.Entries, e => e.Message.Contains("max-connection-lifetime → protocol", StringComparison.Ordinal));
        Assert.Contains(server.Logs.Entries, e => e.Message.EndsWith("runs each connection through: protocol 'under-test'.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NegativeLifetime_FailsAtStart_NamingTheKey()
    {
        var ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:Limits:MaxConnectionLifetime"] = "-00:00:01",
        });

        Assert.Contains("Transport:Endpoints:main:Limits:MaxConnectionLifetime must not be negative (was -00:00:01)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RealSocket_OnTheRealClock_IsClosedAtItsLifetime()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync(b => b.Transport.AddProtocol<EchoProtocol>("under-test")
            .Listen("tcp://127.0.0.1:0", "under-test", l => l.MaxConnectionLifetime = TimeSpan.FromMilliseconds(200)));
        var address = (IPEndPoint)server.Services.GetRequiredService<ITransportServer>().Bindings.Single().EndPoint;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(address).DefaultTimeout();
        await socket.SendAsync("ping"u8.ToArray()).DefaultTimeout();
        var buffer = new byte[16];
        int received = 0;
        while (received < 4)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(received)).DefaultTimeout();
            Assert.NotEqual(0, n);
            received += n;
        }

        // Echo ignores the close request; the grace period (5 s) later it is aborted: the read ends, by FIN or reset.
        try
        {
            Assert.Equal(0, await socket.ReceiveAsync(buffer).DefaultTimeout());
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 100);
    }

    private Task<TransportTestServer> StartAsync<TProtocol>(TestTransport transport, Action<TransportLimits> limits)
        where TProtocol : ConnectionHandler =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Transport.AddProtocol<TProtocol>("under-test").Listen(b.ListenUrl(transport), "under-test", limits);
        });
}
