using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace Transport.Framing.Tests;

/// <summary>A framed protocol written with the toolkit, run over every transport with the test kit.</summary>
public sealed class FramedProtocolTests
{
    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task TwoMessagesInOneSend_GetTwoRepliesInOrder(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Frames("hello", "world"));

        Assert.Equal(Frames("HELLO", "WORLD"), await client.ReceiveExactlyAsync(14));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task MessagesSentOneByteAtATime_AreAnsweredWhole(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        foreach (byte b in Frames("abc", "defgh"))
        {
            await client.SendAsync(new[] { b });
        }

        Assert.Equal(Frames("ABC", "DEFGH"), await client.ReceiveExactlyAsync(12));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ThousandPipelinedMessages_AllAnsweredInOrder(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        string[] words = Enumerable.Range(0, 1000).Select(i => "m" + i).ToArray();

        await client.SendAsync(Frames(words));
        await client.CompleteOutputAsync();

        Assert.Equal(Frames(words.Select(w => w.ToUpperInvariant()).ToArray()), await client.ReceiveToEndAsync());
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task HandlerRequestsClose_ReplyIsSent_ThenTheConnectionCloses_WithoutError(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Frames("a", "quit", "never answered"));

        Assert.Equal(Frames("A", "BYE"), await client.ReceiveToEndAsync());
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task ServerStops_IdleFramedConnection_ClosesCleanly(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync(Frames("x"));
        Assert.Equal(Frames("X"), await client.ReceiveExactlyAsync(3));

        // The client reads to the end and then closes its side, as a well-behaved peer does.
        Task<byte[]> rest = Task.Run(async () =>
        {
            byte[] bytes = await client.ReceiveToEndAsync();
            await client.CompleteOutputAsync();
            return bytes;
        });
        await server.StopAsync();

        Assert.Empty(await rest.DefaultTimeout());
        Assert.Empty(server.Logs.At(LogLevel.Error));
        Assert.DoesNotContain(server.Logs.Entries, e => e.Message.Contains("Aborting", StringComparison.OrdinalIgnoreCase));
    }

    public static IEnumerable<object[]> BadInputs()
    {
        foreach (object[] row in TestTransports.Streams)
        {
            yield return [row[0], "oversize", new byte[] { 0x7F, 0xFF }, "more than the maximum message size of 1024"];
            yield return [row[0], "garbage", "GET / HTTP/1.1\r\n\r\n"u8.ToArray(), "more than the maximum message size of 1024"];
            yield return [row[0], "truncated", new byte[] { 0, 10, (byte)'a', (byte)'b' }, "ended inside a message"];
        }
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task BadInput_ClosesThatConnectionWithALastError_LogsItAtDebugWithTheConnectionId_OthersCarryOn(
        TestTransport transport, string kind, byte[] bad, string expected)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(transport);
        await using ConnectionContext bystander = await server.ConnectAsync();
        await using ConnectionContext offender = await server.ConnectAsync();
        await bystander.SendAsync(Frames("before"));
        Assert.Equal(Frames("BEFORE"), await bystander.ReceiveExactlyAsync(8));

        await offender.SendAsync(bad);
        if (kind == "truncated")
        {
            await offender.CompleteOutputAsync();
        }

        byte[] last = await offender.ReceiveToEndAsync();
        Assert.StartsWith("ERR Invalid frame", Encoding.ASCII.GetString(last.AsSpan(2)), StringComparison.Ordinal);
        // The client's bad input: one Debug line with the reason and no stack trace, nothing at Warning or Error.
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ClientBrokeProtocol, category: LogEvents.Hosting.Category);
        TestLogEntry logged = Assert.Single(server.Logs.Entries, e => e.Message.Contains("broke protocol", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Debug, logged.Level);
        Assert.Null(logged.Exception);
        Assert.Contains(expected, logged.Message, StringComparison.Ordinal);
        Assert.Matches(new Regex("Connection [0-9A-F]+ on '[^']+' closed: the client broke protocol"), logged.Message);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);

        await bystander.SendAsync(Frames("after"));
        Assert.Equal(Frames("AFTER"), await bystander.ReceiveExactlyAsync(7));
    }

    [Fact]
    public async Task Udp_EachDatagramIsFramedWhole_AndAnsweredWithOneDatagram()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<UpperProtocol>(TestTransport.Udp);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Frames("one", "two"));
        Assert.Equal(Frames("ONE", "TWO"), await client.ReceiveOnceAsync());

        // A datagram cannot grow: a frame cut short at its end is dropped, never joined with the next datagram.
        byte[] cut = [.. Frames("three"), 0, 9, (byte)'x'];
        await client.SendAsync(cut);
        Assert.Equal(Frames("THREE"), await client.ReceiveOnceAsync());
        await client.SendAsync(Frames("four"));
        Assert.Equal(Frames("FOUR"), await client.ReceiveOnceAsync());
    }

    private static byte[] Frames(params string[] payloads)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (string payload in payloads)
        {
            UpperProtocol.Framer.Write(output, Encoding.ASCII.GetBytes(payload));
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>The whole protocol: 2-byte length-prefixed messages, answered upper-cased; "quit" says BYE and closes.</summary>
    private sealed class UpperProtocol : FramedProtocol<ReadOnlySequence<byte>>
    {
        public static readonly LengthPrefixedFramer Framer = new(prefixLength: 2, maxMessageSize: 1024);

        protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Framer;

        protected override ValueTask OnMessageAsync(ConnectionContext connection, ReadOnlySequence<byte> message)
        {
            if (message.FirstSpan.SequenceEqual("quit"u8))
            {
                Framer.Write(connection.Transport.Output, "BYE"u8);
                connection.Features.Get<IConnectionLifetimeNotificationFeature>()!.RequestClose();
                return default;
            }

            Framer.Write(connection.Transport.Output, (int)message.Length, message, static (span, m) =>
            {
                m.CopyTo(span);
                return Ascii.ToUpperInPlace(span[..(int)m.Length], out int written) == System.Buffers.OperationStatus.Done ? written : 0;
            });
            return default;
        }

        protected override ValueTask OnInvalidFrameAsync(ConnectionContext connection, InvalidFrameException exception)
        {
            Framer.Write(connection.Transport.Output, Encoding.ASCII.GetBytes("ERR " + exception.Message));
            return default;
        }
    }
}
