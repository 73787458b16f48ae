using System.Text;
using System.Text.RegularExpressions;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;

namespace Transport.KeyValue.Tests;

/// <summary>
/// Malformed RESP gets Redis's own protocol error and that connection is closed, as Redis does; the client's bad
/// input is logged once at Debug without a stack trace and counted, never as a server error; every other
/// connection carries on.
/// </summary>
public sealed class RespBadInputTests
{
    public static IEnumerable<object[]> Cases()
    {
        string[][] cases =
        [
            ["*abc\r\n", "invalid multibulk length"],
            ["*2000000\r\n", "invalid multibulk length"],
            ["*1\r\n+PING\r\n", "expected '$', got '+'"],
            ["*1\r\n$-1\r\n", "invalid bulk length"],
            ["*1\r\n$x\r\n", "invalid bulk length"],
            ["*2\r\n$3\r\nGET\r\n$1000000000\r\n", "invalid bulk length"],
            ["*1\r\n$3\r\nPINGPONG\r\n", "bulk length mismatch"],
            ["set \"a key 'v'\r\n", "unbalanced quotes in request"],
            ["set 'it''s' v\r\n", "unbalanced quotes in request"],
            [new string('x', 70_000), "too big inline request"],
            ["*1" + new string('1', 70_000), "too big mbulk count string"],
        ];
        foreach (object[] transport in TestTransports.Streams)
        {
            foreach (string[] c in cases)
            {
                yield return [transport[0], c[0].Length > 40 ? c[0][..20] + "…(" + c[0].Length + ")" : c[0], c[1]];
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MalformedRequest_GetsProtocolError_ThenClose_OthersCarryOn(TestTransport transport, string label, string expected)
    {
        string bad = Expand(label);
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext bystander = await server.ConnectAsync();
        await using ConnectionContext offender = await server.ConnectAsync();
        Assert.Equal("OK", await bystander.CallAsync("SET", "k", "before"));

        // A valid command first: its reply comes back before the error.
        await offender.SendAsync(Resp.Command("PING").Concat(Encoding.UTF8.GetBytes(bad)).ToArray());

        Assert.Equal("PONG", await offender.ReadReplyAsync());
        string error = await offender.ReadReplyAsync();
        Assert.StartsWith("-ERR Protocol error: ", error, StringComparison.Ordinal);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Empty(await offender.ReceiveToEndAsync());

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ClientBrokeProtocol, category: LogEvents.Hosting.Category);
        TestLogEntry logged = Assert.Single(InvalidInputLines(server));
        Assert.Null(logged.Exception);
        Assert.Matches(new Regex("Connection [0-9A-F]+ on '[^']+' closed: the client broke protocol 'kv': Protocol error: "), logged.Message);
        Assert.Contains(expected, logged.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);

        Assert.Equal("before", await bystander.CallAsync("GET", "k"));
        await using ConnectionContext newcomer = await server.ConnectAsync();
        Assert.Equal("PONG", await newcomer.CallAsync("PING"));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task RequestLargerThanMaxRequestSize_IsRefused_BeforeItIsBuffered(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, maxRequestSize: 4096);
        await using ConnectionContext client = await server.ConnectAsync();

        Assert.Equal("OK", await client.CallAsync("SET", "k", new string('v', 3000)));
        await client.SendAsync(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n"));

        Assert.Equal("-ERR Protocol error: invalid bulk length", await client.ReadReplyAsync());
        Assert.Empty(await client.ReceiveToEndAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ManyArgumentsAddingUpOverMaxRequestSize_IsAProtocolError(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport, maxRequestSize: 4096);
        await using ConnectionContext client = await server.ConnectAsync();
        byte[] request = Resp.Command([.. new[] { "MSET" }, .. Enumerable.Range(0, 600).Select(i => "k" + i)]);

        await client.SendAsync(request);

        string error = await client.ReadReplyAsync();
        Assert.StartsWith("-ERR Protocol error: ", error, StringComparison.Ordinal);
        Assert.Contains("maximum message size", error, StringComparison.Ordinal);
        Assert.Empty(await client.ReceiveToEndAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ConnectionEndingInsideARequest_IsOnlyADebugLine_AndTheServerCarriesOn(TestTransport transport)
    {
        await using TransportTestServer server = await KeyValueServer.StartAsync(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$5\r\nab"));
        await client.CompleteOutputAsync();

        Assert.StartsWith("-ERR Protocol error: Invalid frame: the input ended inside a message", await client.ReadReplyAsync(), StringComparison.Ordinal);
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ClientBrokeProtocol, category: LogEvents.Hosting.Category);
        Assert.Null(Assert.Single(InvalidInputLines(server)).Exception);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        await using ConnectionContext other = await server.ConnectAsync();
        Assert.Equal("PONG", await other.CallAsync("PING"));
    }

    [Fact]
    public async Task ManyGarbageConnections_OneDebugLineEach_NothingAtWarningOrError_CountedInTheMetric()
    {
        const int Connections = 200;
        await using TransportTestServer server = await KeyValueServer.StartAsync(TestTransport.Tcp);
        using var ended = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.connection.duration");
        string[] garbage = ["*abc\r\n", "\u0001\u0002\u0003 \"unbalanced\r\n", "*1\r\n$3\r\nPINGPONG\r\n", "*2\r\n$3\r\nGET\r\n$5\r\nab"];

        await Task.WhenAll(Enumerable.Range(0, Connections).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            await client.SendAsync(Encoding.ASCII.GetBytes(garbage[i % garbage.Length]));
            if (i % garbage.Length == 3)
            {
                // A peer that half-closes in the middle of a request.
                await client.CompleteOutputAsync();
            }

            Assert.StartsWith("-ERR Protocol error: ", await client.ReadReplyAsync(), StringComparison.Ordinal);
        })).DefaultTimeout();

        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ClientBrokeProtocol, Connections, LogEvents.Hosting.Category);
        Assert.All(InvalidInputLines(server), e => Assert.Null(e.Exception));
        Assert.Equal(Connections, InvalidInputLines(server).Select(e => Regex.Match(e.Message, "^Connection ([0-9A-F]+) ").Groups[1].Value).Distinct().Count());
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        await ended.WaitForMeasurementsAsync(Connections).DefaultTimeout();
        Assert.Equal(Connections, ended.GetMeasurementSnapshot().Count);
        Assert.All(ended.GetMeasurementSnapshot(), m =>
        {
            Assert.Equal("invalid_input", m.Tags["error.type"]);
            Assert.Equal(server.Bindings[0].Name, m.Tags["transport.endpoint"]);
            Assert.Equal("kv", m.Tags["network.protocol.name"]);
        });
    }

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    /// <summary>The host's one line per connection whose client broke the protocol.</summary>
    private static IEnumerable<TestLogEntry> InvalidInputLines(TransportTestServer server) =>
        server.Logs.Entries.Where(e => e.Category == LogEvents.Hosting.Category && e.EventId.Id == LogEvents.Hosting.ClientBrokeProtocol);

    private static string Expand(string label)
    {
        Match long1 = Regex.Match(label, @"^(.*)…\((\d+)\)$");
        if (!long1.Success)
        {
            return label;
        }

        // Labels keep test names short; the long inputs are a prefix followed by filler of the same character.
        string prefix = long1.Groups[1].Value;
        int length = int.Parse(long1.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        return prefix + new string(prefix[^1], length - prefix.Length);
    }
}
