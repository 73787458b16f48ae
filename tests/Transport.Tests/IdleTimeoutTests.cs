using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>Limits:IdleTimeout for any protocol, on a fake clock: asked to close when idle, aborted after the grace period.</summary>
public sealed class IdleTimeoutTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new();

    [Theory]
    [MemberData(nameof(TestTransports.Streams), MemberType = typeof(TestTransports))]
    public async Task IdleEcho_IsAskedToClose_ThenAborted_AndCounted(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(transport);
        using var counted = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connections.idle_timeouts");
        await using ConnectionContext client = await server.ConnectAsync();
        await PingAsync(client);

        _time.Advance(Timeout + TimeSpan.FromSeconds(1));
        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 50);
        // Echo does not watch for close requests: the grace period ends it.
        _time.Advance(TransportLimits.IdleCloseGracePeriod + TimeSpan.FromSeconds(1));
        Assert.Single(server.Logs.Entries, e => e.EventId.Id == 51);

        await ReceiveEndAsync(client);
        Assert.Equal("idle_timeout", Assert.Single(counted.GetMeasurementSnapshot()).Tags["error.type"]);
        Assert.Contains(server.Logs.Entries, e => e.Message.EndsWith("runs each connection through: idle-timeout → protocol 'under-test'.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TrafficInEitherDirection_KeepsTheConnectionOpen()
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(TestTransport.Tcp);
        await using ConnectionContext client = await server.ConnectAsync();

        for (int i = 0; i < 4; i++)
        {
            _time.Advance(Timeout / 2 + TimeSpan.FromSeconds(1));
            await PingAsync(client);
        }

        Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id is 50 or 51);
    }

    [Fact]
    public async Task ProtocolThatHonoursTheCloseRequest_ClosesGracefully_WithoutAbort()
    {
        await using TransportTestServer server = await StartAsync<GoodbyeProtocol>(TestTransport.Tcp);
        await using ConnectionContext client = await server.ConnectAsync();
        // Once the greeting is here, the connection is in the server's pipeline and its idle clock runs.
        Assert.Equal("hi "u8.ToArray(), await client.ReceiveExactlyAsync(3).DefaultTimeout());
        Task<byte[]> received = client.ReceiveToEndAsync();

        _time.Advance(Timeout + TimeSpan.FromSeconds(1));

        Assert.Equal("bye", Encoding.ASCII.GetString(await received.DefaultTimeout()));
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 4));
        _time.Advance(TransportLimits.IdleCloseGracePeriod * 2);
        Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == 51);
    }

    [Fact]
    public async Task NegativeIdleTimeout_FailsAtStart()
    {
        var ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Limits:IdleTimeout"] = "-00:00:01",
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
        });

        Assert.Contains("Transport:Limits:IdleTimeout must not be negative (was -00:00:01)", ex.Message, StringComparison.Ordinal);
    }

    private Task<TransportTestServer> StartAsync<TProtocol>(TestTransport transport)
        where TProtocol : ConnectionHandler =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Transport.AddProtocol<TProtocol>("under-test").Listen(b.ListenUrl(transport), "under-test", limits => limits.IdleTimeout = Timeout);
        });

    internal static async Task PingAsync(ConnectionContext client)
    {
        await client.SendAsync("ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await client.ReceiveExactlyAsync(4).DefaultTimeout());
    }

    internal static async Task ReceiveEndAsync(ConnectionContext client)
    {
        try
        {
            Assert.Empty(await client.ReceiveToEndAsync().DefaultTimeout());
        }
        catch (ConnectionResetException)
        {
            // An abort reaches a TCP client as a reset.
        }
    }

    /// <summary>Says hello, then goodbye and closes when the server asks it to.</summary>
    internal sealed class GoodbyeProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var closing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await connection.Transport.Output.WriteAsync("hi "u8.ToArray());
            IConnectionLifetimeNotificationFeature lifetime = connection.Features.Get<IConnectionLifetimeNotificationFeature>()!;
            using (lifetime.ConnectionClosedRequested.Register(() => closing.TrySetResult()))
            {
                await closing.Task;
            }

            await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
        }
    }
}
