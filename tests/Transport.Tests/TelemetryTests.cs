using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;
using Transport.TestSupport;

namespace Transport.Tests;

/// <summary>
/// The server's instruments, read through the host's own <see cref="IMeterFactory"/> as a dashboard would: shaped like
/// Kestrel's (attributes of the OpenTelemetry conventions, a closed list of <c>error.type</c>), and never the client's address.
/// </summary>
public sealed partial class TelemetryTests
{
    public static IEnumerable<object[]> Streams => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task ActiveConnections_CountsAServedConnection_ThenNoneOnceItCloses_WithTheEndpointsAttributes(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var active = new MetricCollector<long>(meters, "Transport", "transport.active_connections");
        using var ended = new MetricCollector<double>(meters, "Transport", "transport.connection.duration");

        await using (ConnectionContext client = await server.ConnectAsync())
        {
            await client.SendAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await client.ReceiveExactlyAsync(4));
            active.RecordObservableInstruments();
            CollectedMeasurement<long> open = active.LastMeasurement!;
            Assert.Equal(1, open.Value);
            AssertEndpointAttributes(server, transport, open.Tags);
            await client.CompleteOutputAsync();
            Assert.Empty(await client.ReceiveToEndAsync());
        }

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        active.RecordObservableInstruments();
        Assert.Equal(0, active.LastMeasurement!.Value);
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task PeerCloses_DurationHasNoErrorType_AndTheBytesEachWayAreCounted(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport);
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var ended = new MetricCollector<double>(meters, "Transport", "transport.connection.duration");
        using var io = new MetricCollector<long>(meters, "Transport", "transport.io");

        await using (ConnectionContext client = await server.ConnectAsync())
        {
            await client.SendAsync(new byte[3000]);
            await client.ReceiveExactlyAsync(3000);
            await client.SendAsync(new byte[1000]);
            await client.ReceiveExactlyAsync(1000);
            await client.CompleteOutputAsync();
            Assert.Empty(await client.ReceiveToEndAsync());
        }

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        CollectedMeasurement<double> duration = Assert.Single(ended.GetMeasurementSnapshot());
        Assert.False(duration.Tags.ContainsKey("error.type"));
        Assert.InRange(duration.Value, 0, TestTimeouts.Default.TotalSeconds);
        AssertEndpointAttributes(server, transport, duration.Tags);
        Assert.Equal(4000, io.GetMeasurementSnapshot().Where(m => Equals(m.Tags["network.io.direction"], "receive")).Sum(m => m.Value));
        Assert.Equal(4000, io.GetMeasurementSnapshot().Where(m => Equals(m.Tags["network.io.direction"], "transmit")).Sum(m => m.Value));
    }

    [Fact]
    public async Task UdpDatagramsAndSessions_CarryTheListenersAttributes()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var datagrams = new MetricCollector<long>(meters, "Transport", "transport.udp.datagrams");
        using var sessions = new MetricCollector<long>(meters, "Transport", "transport.udp.active_sessions");
        var target = (IPEndPoint)((UdpEndPoint)server.EndPoint).Address;
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        await peer.SendToAsync("ping"u8.ToArray(), target).DefaultTimeout();
        var answer = new byte[16];
        Assert.Equal(4, (await peer.ReceiveFromAsync(answer, new IPEndPoint(IPAddress.Any, 0)).DefaultTimeout()).ReceivedBytes);

        await datagrams.WaitForMeasurementsAsync(1).DefaultTimeout();
        CollectedMeasurement<long> delivered = Assert.Single(datagrams.GetMeasurementSnapshot());
        CollectedMeasurement<long> opened = Assert.Single(sessions.GetMeasurementSnapshot());
        Assert.Equal(("delivered", 1L, 1L), (delivered.Tags["transport.udp.outcome"], delivered.Value, opened.Value));
        foreach (IReadOnlyDictionary<string, object?> tags in new[] { delivered.Tags, opened.Tags })
        {
            Assert.Equal(("udp", "ipv4", "127.0.0.1", (object)target.Port),
                (tags["network.transport"], tags["network.type"], tags["server.address"], tags["server.port"]));
            Assert.DoesNotContain(tags.Keys, k => k.StartsWith("client.", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task PeerResets_DurationHasConnectionReset()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Tcp);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(server.EndPoint).DefaultTimeout();
            await client.SendAsync("ping"u8.ToArray()).DefaultTimeout();
            var answer = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(answer).DefaultTimeout());

            // Closing with a zero linger sends RST instead of FIN.
            client.LingerState = new LingerOption(true, 0);
        }

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("connection_reset", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task ProtocolAborts_DurationHasAbortedByApp(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<AbortingProtocol>(transport);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("x"u8.ToArray());

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("aborted_by_app", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task ConnectionOverTheLimit_IsCountedRejected_WithDurationMaxConcurrentConnectionsExceeded(TestTransport transport)
    {
        await using TransportTestServer server = await EchoServer.StartAsync(transport, limits => limits.MaxConcurrentConnections = 1);
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var rejected = new MetricCollector<long>(meters, "Transport", "transport.rejected_connections");
        using var ended = new MetricCollector<double>(meters, "Transport", "transport.connection.duration");
        await using ConnectionContext first = await server.ConnectAsync();
        await first.SendAsync("1"u8.ToArray());
        Assert.Equal("1"u8.ToArray(), await first.ReceiveExactlyAsync(1));

        await using ConnectionContext second = await server.ConnectAsync();

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("max_concurrent_connections_exceeded", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
        CollectedMeasurement<long> counted = Assert.Single(rejected.GetMeasurementSnapshot());
        Assert.Equal(1, counted.Value);
        AssertEndpointAttributes(server, transport, counted.Tags);
    }

    [Theory]
    [InlineData("idle_timeout")]
    [InlineData("a_middlewares_own_reason")]
    public async Task AReasonSetByTheCodeThatEndedTheConnection_WinsOverWhatTheProtocolSaw(string reason)
    {
        // What the idle timeout and the TLS middleware do: say why, then end the connection.
        await using TransportTestServer server = await TransportTestServer.StartAsync<EndingWithAReasonProtocol>(TestTransport.Tcp,
            b => b.Host.Services.AddSingleton(new EndReason(reason)));
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("x"u8.ToArray());

        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal(reason, Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
        await using ConnectionContext next = await server.ConnectAsync();
        await next.SendAsync("x"u8.ToArray());
        await ended.WaitForMeasurementsAsync(2).DefaultTimeout();
    }

    [Fact]
    public async Task AMetricsListenerThatThrows_IsLoggedAndTheServerCarriesOn_AndStillStops()
    {
        TransportTestServer server = await EchoServer.StartAsync(TestTransport.Tcp);
        IMeterFactory scope = server.Services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // This host's instruments only: tests running alongside are not disturbed.
            if (instrument.Name == "transport.connection.duration" && ReferenceEquals(instrument.Meter.Scope, scope))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => throw new InvalidOperationException("a listener's bug"));
        listener.Start();

        for (int i = 0; i < 2; i++)
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await client.ReceiveExactlyAsync(4));
            await client.CompleteOutputAsync();
            Assert.Empty(await client.ReceiveToEndAsync());
        }

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.TelemetryFailed, 2, LogEvents.Hosting.Category).DefaultTimeout();
        Assert.All(server.Logs.Entries.Where(e => e.EventId.Id == LogEvents.Hosting.TelemetryFailed),
            e => Assert.IsType<InvalidOperationException>(e.Exception));
        await server.DisposeAsync();
    }

    [Fact]
    public async Task ATracingListenerThatThrowsWhenASpanStarts_IsLogged_AndTheConnectionIsStillServedAndClosed()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Tcp);
        object port = ((System.Net.IPEndPoint)server.EndPoint).Port;
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Transport",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            // The source is process-wide: this listener fails only for this server's spans.
            ActivityStarted = activity =>
            {
                if (Equals(activity.GetTagItem("server.port"), port))
                {
                    throw new InvalidOperationException("a tracer's bug");
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await client.ReceiveExactlyAsync(4).DefaultTimeout());
        await client.CompleteOutputAsync();
        Assert.Empty(await client.ReceiveToEndAsync().DefaultTimeout());

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.TelemetryFailed, category: LogEvents.Hosting.Category).DefaultTimeout();
        Assert.Contains(server.Logs.Entries, e => e.EventId.Id == LogEvents.Hosting.TelemetryFailed && e.Exception is InvalidOperationException);
    }

    [Fact]
    public async Task ConnectionOpenAtTheShutdownDeadline_IsAbortedAndCounted_WithDurationAppShutdownTimeout()
    {
        TransportTestServer server = await TransportTestServer.StartAsync(b => b.Transport.AddProtocol<StubbornProtocol>("stubborn")
            .Listen(b.ListenUrl(TestTransport.Tcp), "stubborn", limits => limits.ShutdownTimeout = TimeSpan.FromMilliseconds(200)));
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var ended = new MetricCollector<double>(meters, "Transport", "transport.connection.duration");
        using var aborted = new MetricCollector<long>(meters, "Transport", "transport.drain.aborted_connections");
        using var drain = new MetricCollector<double>(meters, "Transport", "transport.drain.duration");
        StubbornProtocol protocol = server.Services.GetRequiredService<StubbornProtocol>();
        await using ConnectionContext client = await server.ConnectAsync();
        await protocol.Running.Task.DefaultTimeout();

        await server.DisposeAsync();

        Assert.Equal("app_shutdown_timeout", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
        Assert.Equal(1, Assert.Single(aborted.GetMeasurementSnapshot()).Value);
        Assert.InRange(Assert.Single(drain.GetMeasurementSnapshot()).Value, 0.1, TestTimeouts.Default.TotalSeconds);
    }

    [Fact]
    public async Task Spans_AcceptSpanAlways_ConnectionSpanOnlyWhenEnabled_WithErrorType()
    {
        var stopped = new System.Collections.Concurrent.ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Transport",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using TransportTestServer plain = await TransportTestServer.StartAsync<AbortingProtocol>(TestTransport.Tcp);
        await using TransportTestServer traced = await TransportTestServer.StartAsync<AbortingProtocol>(TestTransport.Tcp,
            b => b.Host.Services.Configure<TransportServerOptions>(o => o.Telemetry.ConnectionSpans = true));

        string plainId = await ConnectAndAwaitEndAsync(plain);
        string tracedId = await ConnectAndAwaitEndAsync(traced);

        // The activity source is process-wide: only the spans of these two connections count.
        Activity[] ofPlain = [.. stopped.Where(a => Equals(a.GetTagItem("transport.connection.id"), plainId))];
        Assert.Equal("transport.accept", Assert.Single(ofPlain).OperationName);
        Activity[] ofTraced = [.. stopped.Where(a => Equals(a.GetTagItem("transport.connection.id"), tracedId))];
        Activity connection = Assert.Single(ofTraced, a => a.OperationName == "transport.connection");
        Activity accept = Assert.Single(ofTraced, a => a.OperationName == "transport.accept");
        Assert.Equal(connection.SpanId, accept.ParentSpanId);
        Assert.Equal(ActivityKind.Server, connection.Kind);
        Assert.Equal("aborted_by_app", connection.GetTagItem("error.type"));
        Assert.Equal(ActivityStatusCode.Error, connection.Status);
        Assert.Equal(((IPEndPoint)traced.EndPoint).Port, connection.GetTagItem("server.port"));
        Assert.Null(connection.GetTagItem("client.address"));

        async Task<string> ConnectAndAwaitEndAsync(TransportTestServer server)
        {
            using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync("x"u8.ToArray());
            await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
            return Assert.Single(server.Logs.Entries, e => e.Category == "Transport.Hosting" && e.EventId.Id == 3).ScopeValue("ConnectionId") as string
                ?? throw new InvalidOperationException("no connection scope");
        }
    }

    [Theory]
    [InlineData("true", null)]
    [InlineData("yes", "Transport:Telemetry:ConnectionSpans is 'yes'; it must be true or false.")]
    public async Task ConnectionSpans_IsAKnownKeyUnderTransport_ThatTakesTrueOrFalse(string value, string? failure)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:Telemetry:ConnectionSpans"] = value,
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
        });
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport")).AddProtocol<EchoProtocol>("echo");
        using IHost host = builder.Build();

        if (failure is null)
        {
            await host.StartAsync().DefaultTimeout();
            Assert.True(host.Services.GetRequiredService<IOptions<TransportServerOptions>>().Value.Telemetry.ConnectionSpans);
            await host.StopAsync().DefaultTimeout();
        }
        else
        {
            OptionsValidationException ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();
            Assert.Equal(failure, ex.Message);
        }
    }

    [Fact]
    public async Task ProtocolsOwnLogLines_CarryTheConnectionIdAndEndpointScope()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<LoggingProtocol>(TestTransport.Tcp);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await client.ReceiveExactlyAsync(1));

        TestLogEntry line = Assert.Single(server.Logs.Entries, e => e.Message == "Received 1 bytes");
        TestLogEntry accepted = Assert.Single(server.Logs.Entries, e => e.Category == "Transport.Hosting" && e.EventId.Id == 3);
        Assert.Matches("^[0-9A-F]+$", (string)line.ScopeValue("ConnectionId")!);
        Assert.Contains((string)line.ScopeValue("ConnectionId")!, accepted.Message, StringComparison.Ordinal);
        Assert.Equal(server.Bindings[0].Name, line.ScopeValue("Endpoint"));
    }

    private static void AssertEndpointAttributes(TransportTestServer server, TestTransport transport, IReadOnlyDictionary<string, object?> tags)
    {
        TransportBinding binding = server.Bindings[0];
        Assert.Equal(binding.Name, tags["transport.endpoint"]);
        Assert.Equal(binding.Protocol, tags["network.protocol.name"]);
        switch (transport)
        {
            case TestTransport.Tcp or TestTransport.TcpIPv6:
                var ip = (IPEndPoint)binding.EndPoint;
                Assert.Equal("tcp", tags["network.transport"]);
                Assert.Equal(transport == TestTransport.Tcp ? "ipv4" : "ipv6", tags["network.type"]);
                Assert.Equal(ip.Address.ToString(), tags["server.address"]);
                Assert.Equal(ip.Port, tags["server.port"]);
                break;
            case TestTransport.Unix:
                Assert.Equal("unix", tags["network.transport"]);
                Assert.Equal(binding.EndPoint.ToString(), tags["server.address"]);
                break;
            case TestTransport.Memory:
                Assert.Equal("memory", tags["network.transport"]);
                Assert.Equal(((MemoryEndPoint)binding.EndPoint).Name, tags["server.address"]);
                break;
        }

        // Where the server listens, never who connected: no client address or port in any attribute.
        Assert.DoesNotContain(tags.Keys, k => k.StartsWith("client.", StringComparison.Ordinal) || k.StartsWith("network.peer.", StringComparison.Ordinal));
    }

    /// <summary>Aborts each connection after its first read, and returns normally.</summary>
    private sealed class AbortingProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            ReadResult read = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            connection.Abort();
        }
    }

    private sealed record EndReason(string Value);

    /// <summary>Ends its connection as the idle timeout would: the reason first, then the abort.</summary>
    private sealed class EndingWithAReasonProtocol(EndReason reason) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            ReadResult read = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            ((TransportConnection)connection).EndReason = reason.Value;
            connection.Abort();
            await connection.Transport.Input.ReadAsync();
        }
    }

    /// <summary>Ignores close requests: only the shutdown deadline's abort ends it.</summary>
    private sealed class StubbornProtocol : ConnectionHandler
    {
        public TaskCompletionSource Running { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            Running.TrySetResult();
            while (true)
            {
                ReadResult read = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Echoes one read and logs a line of its own, as a user's plugin would.</summary>
    private sealed partial class LoggingProtocol(ILogger<LoggingProtocol> logger) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            ReadResult read = await connection.Transport.Input.ReadAsync();
            Received(logger, read.Buffer.Length);
            foreach (ReadOnlyMemory<byte> segment in read.Buffer)
            {
                await connection.Transport.Output.WriteAsync(segment);
            }

            connection.Transport.Input.AdvanceTo(read.Buffer.End);
        }

        [LoggerMessage(1, LogLevel.Information, "Received {Count} bytes")]
        private static partial void Received(ILogger logger, long count);
    }
}
