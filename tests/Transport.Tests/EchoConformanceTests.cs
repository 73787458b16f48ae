using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Transport.Hosting;

namespace Transport.Tests;

/// <summary>
/// One behaviour suite, every stream transport: the echo protocol over IPv4 and IPv6 TCP, a Unix socket and
/// the in-memory transport, through the framework's own client side.
/// </summary>
public sealed class EchoConformanceTests
{
    public static IEnumerable<object[]> Transports => TestTransports.Streams;

    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task Echo_SmallMessage_ComesBackUnchanged(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("hello, transport"u8.ToArray());

        Assert.Equal("hello, transport"u8.ToArray(), await client.ReceiveExactlyAsync(16));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Echo_OneMebibyteRandomPayload_ComesBackByteForByte(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        byte[] payload = ConnectionTestExtensions.RandomBytes(1024 * 1024);

        // Send and receive at once: the payload is larger than the buffers on either side.
        Task sending = Task.Run(async () =>
        {
            for (int offset = 0; offset < payload.Length; offset += 16 * 1024)
            {
                await client.SendAsync(payload.AsMemory(offset, Math.Min(16 * 1024, payload.Length - offset)));
            }

            await client.Transport.Output.CompleteAsync();
        });
        byte[] echoed = await client.ReceiveToEndAsync();
        await sending.DefaultTimeout();

        Assert.Equal(payload.Length, echoed.Length);
        Assert.True(payload.AsSpan().SequenceEqual(echoed), "echoed bytes differ from the payload");
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Echo_TwoHundredConcurrentConnections_EachGetsItsOwnBytes(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);

        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            byte[] payload = ConnectionTestExtensions.RandomBytes(1000 + i);
            await client.SendAsync(payload);
            await client.Transport.Output.CompleteAsync();
            Assert.Equal(payload, await client.ReceiveToEndAsync());
        })).DefaultTimeout();
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task Echo_TwoHundredConcurrentPeers_PingPong_EachGetsItsOwnBytes(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);

        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            for (int n = 0; n < 5; n++)
            {
                byte[] payload = ConnectionTestExtensions.RandomBytes(1 + ((i * 31 + n * 7) % 1400));
                await client.SendAsync(payload);
                Assert.Equal(payload, await client.ReceiveExactlyAsync(payload.Length));
            }
        })).DefaultTimeout();
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task HalfClose_ServerFinishesEchoingThenCloses(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        byte[] payload = ConnectionTestExtensions.RandomBytes(200_000);

        await client.SendAsync(payload);
        await client.Transport.Output.CompleteAsync();

        Assert.Equal(payload, await client.ReceiveToEndAsync());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task PeerAbortsMidTransfer_OtherConnectionsCarryOn(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        await using ConnectionContext survivor = await server.ConnectAsync();
        await using ConnectionContext victim = await server.ConnectAsync();

        await victim.SendAsync(ConnectionTestExtensions.RandomBytes(100_000));
        victim.Abort(new ConnectionAbortedException("test aborts the client"));

        for (int i = 0; i < 3; i++)
        {
            byte[] payload = ConnectionTestExtensions.RandomBytes(10_000);
            await survivor.SendAsync(payload);
            Assert.Equal(payload, await survivor.ReceiveExactlyAsync(payload.Length));
        }

        await AssertEventually(() => ActiveConnections(server) == 1);
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task ProtocolThrows_OnlyItsConnectionEnds_LoggedAtErrorWithConnectionId(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync(
            b => b.Transport.AddProtocol<Transport.Protocols.Echo.EchoProtocol>("echo")
                  .AddProtocol<ThrowAfterFirstReadProtocol>("faulty")
                  .Listen(b.ListenUrl(transport), "echo")
                  .Listen(b.ListenUrl(transport), "faulty"));
        int echoIndex = server.Bindings.ToList().FindIndex(b => b.Protocol == "echo");
        int faultyIndex = 1 - echoIndex;
        await using ConnectionContext healthy = await server.ConnectAsync(echoIndex);
        await using ConnectionContext doomed = await server.ConnectAsync(faultyIndex);

        await doomed.SendAsync("boom"u8.ToArray());
        byte[] rest = await doomed.ReceiveToEndAsync();

        Assert.Empty(rest);
        await healthy.SendAsync("still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), await healthy.ReceiveExactlyAsync(10));
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ProtocolFailed, category: LogEvents.Hosting.Category);
        TestLogEntry error = Assert.Single(server.Logs.At(LogLevel.Error));
        Assert.IsType<InvalidOperationException>(error.Exception);
        Assert.Contains("'faulty'", error.Message, StringComparison.Ordinal);
        Assert.Matches("connection [0-9A-F]+", error.Message);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task OverConnectionLimit_NewConnectionIsClosedAtOnce_ExistingOnesUnaffected(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport, limits => limits.MaxConcurrentConnections = 2);
        using var rejected = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.rejected_connections");
        await using ConnectionContext first = await server.ConnectAsync();
        await using ConnectionContext second = await server.ConnectAsync();
        await first.SendAsync("1"u8.ToArray());
        await second.SendAsync("2"u8.ToArray());
        Assert.Equal("1"u8.ToArray(), await first.ReceiveExactlyAsync(1));
        Assert.Equal("2"u8.ToArray(), await second.ReceiveExactlyAsync(1));

        await using ConnectionContext third = await server.ConnectAsync();
        byte[] answer = await ReceiveUntilClosedIgnoringResetAsync(third);

        Assert.Empty(answer);
        await first.SendAsync("still 1"u8.ToArray());
        Assert.Equal("still 1"u8.ToArray(), await first.ReceiveExactlyAsync(7));
        Assert.Equal(1, rejected.GetMeasurementSnapshot().Sum(m => m.Value));

        Assert.Contains(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("limit of 2", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task StopRequestedMidTransfer_ConnectionGetsAllItsEchoedBytesBeforeTheDeadline(TestTransport transport)
    {
        TransportTestServer server = await EchoServer.StartAsync(transport, limits => limits.ShutdownTimeout = TimeSpan.FromSeconds(20));
        try
        {
            await using ConnectionContext client = await server.ConnectAsync();
            byte[] payload = ConnectionTestExtensions.RandomBytes(1024 * 1024);
            await client.SendAsync(payload.AsMemory(0, 64 * 1024));
            Assert.Equal(payload.AsMemory(0, 1024).ToArray(), await client.ReceiveExactlyAsync(1024));

            Task stopping = server.Host.StopAsync();
            Task<byte[]> receiving = client.ReceiveToEndAsync();
            for (int offset = 64 * 1024; offset < payload.Length; offset += 64 * 1024)
            {
                await client.SendAsync(payload.AsMemory(offset, 64 * 1024));
            }

            await client.Transport.Output.CompleteAsync();
            byte[] rest = await receiving;
            await stopping.DefaultTimeout();

            Assert.True(payload.AsSpan(1024).SequenceEqual(rest), "echoed bytes after stop differ from the payload");
            Assert.DoesNotContain(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("aborting", StringComparison.Ordinal));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task IdleConnectionAtStop_IsAbortedAtTheDeadline(TestTransport transport)
    {
        TransportTestServer server = await EchoServer.StartAsync(transport, limits => limits.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        try
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync("x"u8.ToArray());
            await client.ReceiveExactlyAsync(1);

            await server.Host.StopAsync().DefaultTimeout();

            Assert.Empty(await ReceiveUntilClosedIgnoringResetAsync(client));
            Assert.Contains(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("aborting 1 connection", StringComparison.Ordinal));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    internal static async Task<byte[]> ReceiveUntilClosedIgnoringResetAsync(ConnectionContext connection)
    {
        try
        {
            return await connection.ReceiveToEndAsync();
        }
        catch (ConnectionResetException)
        {
            return [];
        }
    }

    internal static Task AssertEventually(Func<bool> condition) => TestTimeouts.UntilAsync(condition);

    private static long ActiveConnections(TransportTestServer server)
    {
        var transportServer = (Transport.Hosting.Internal.TransportServer)server.Host.Services.GetService(typeof(ITransportServer))!;
        return transportServer.ActiveConnections;
    }

    private sealed class ThrowAfterFirstReadProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            await connection.Transport.Input.ReadAsync();
            throw new InvalidOperationException("the protocol failed on purpose");
        }
    }
}
