using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Transport.Protocols.Greeting;

namespace Transport.Tests;

/// <summary>
/// A client's bad input is answered, counted and logged at Debug without a stack trace; Error is for faults in the
/// server's own code.
/// </summary>
public sealed class BadInputLoggingTests
{
    [Fact]
    public async Task ProtocolViolationFromAUserProtocol_IsOneDebugLineWithoutStackTrace_AndCounted()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<StrictProtocol>(TestTransport.Tcp);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");

        await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync("nonsense"u8.ToArray());
            Assert.Empty(await client.ReceiveToEndAsync());
        })).DefaultTimeout();

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ClientBrokeProtocol, 50, LogEvents.Hosting.Category);
        Assert.All(InvalidInputLines(server), e =>
        {
            Assert.Equal(LogLevel.Debug, e.Level);
            Assert.Null(e.Exception);
            Assert.EndsWith("the client broke protocol 'protocol-under-test': expected HELLO", e.Message, StringComparison.Ordinal);
        });
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        await ended.WaitForMeasurementsAsync(50).DefaultTimeout();
        Assert.Equal(50, ended.GetMeasurementSnapshot().Count);
        Assert.All(ended.GetMeasurementSnapshot(), m =>
        {
            Assert.Equal("invalid_input", m.Tags["error.type"]);
            Assert.Equal("protocol-under-test", m.Tags["network.protocol.name"]);
        });
    }

    [Fact]
    public async Task AnyOtherExceptionFromAProtocol_IsStillAnErrorWithTheException()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<BuggyProtocol>(TestTransport.Tcp);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync("x"u8.ToArray());
        await client.ReceiveToEndAsync();

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ProtocolFailed, category: LogEvents.Hosting.Category);
        Assert.IsType<InvalidOperationException>(Assert.Single(server.Logs.At(LogLevel.Error)).Exception);
        Assert.Empty(InvalidInputLines(server));
        await ended.WaitForMeasurementsAsync(1).DefaultTimeout();
        Assert.Equal("protocol_error", Assert.Single(ended.GetMeasurementSnapshot()).Tags["error.type"]);
    }

    [Fact]
    public async Task GreetingServer_ManyGarbageConnections_OneDebugLineEach_NothingAtWarningOrError_CountedByStatus()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<GreetingProtocol>(TestTransport.Tcp);
        using var rejected = new MetricCollector<int>(server.Services.GetRequiredService<IMeterFactory>(), "Transport.Protocols.Greeting", "greeting.requests.rejected");
        string[] garbage = ["\u0001\u0002\n", "abc\n", "GET / HTTP/2.0\r\n", "BREW / HTTP/1.0\r\n\r\n", "GET /" + new string('x', 9000)];

        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync(Encoding.ASCII.GetBytes(garbage[i % garbage.Length]));
            Assert.Matches("^HTTP/1.0 (400|414|501|505) ", Encoding.ASCII.GetString(await client.ReceiveToEndAsync()));
        })).DefaultTimeout();

        await server.Logs.WaitForEventAsync(LogEvents.Greeting.BadRequestAnswered, 200, LogEvents.Greeting.Category);
        IEnumerable<TestLogEntry> rejections = server.Logs.Entries.Where(e => e.Category == LogEvents.Greeting.Category && e.EventId.Id == LogEvents.Greeting.BadRequestAnswered);
        Assert.All(rejections, e =>
        {
            Assert.Equal(LogLevel.Debug, e.Level);
            Assert.Null(e.Exception);
        });
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Equal(200, rejected.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(
            new Dictionary<int, long> { [400] = 80, [414] = 40, [501] = 40, [505] = 40 },
            rejected.GetMeasurementSnapshot().GroupBy(m => (int)m.Tags["http.response.status_code"]!).ToDictionary(g => g.Key, g => g.Sum(m => (long)m.Value)));
    }

    private static IEnumerable<TestLogEntry> InvalidInputLines(TransportTestServer server) =>
        server.Logs.Entries.Where(e => e.Category == LogEvents.Hosting.Category && e.EventId.Id == LogEvents.Hosting.ClientBrokeProtocol);

    /// <summary>A user's protocol that signals bad input the ecosystem's way.</summary>
    private sealed class StrictProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var read = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            throw new ProtocolViolationException("expected HELLO");
        }
    }

    /// <summary>A protocol with a bug of its own.</summary>
    private sealed class BuggyProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var read = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            throw new InvalidOperationException("a bug in the protocol");
        }
    }
}
