using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Transport.Framing.Tests;

/// <summary>
/// FramedProtocol's per-connection state and its start, close-request and end hooks, on every way a connection ends:
/// the peer closes, the connection is aborted, a handler throws, the input is invalid, the server shuts down.
/// </summary>
public sealed class FramedProtocolLifecycleTests
{
    private static readonly LengthPrefixedFramer Framer = new(prefixLength: 2, maxMessageSize: 1024);

    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task StartHook_GreetsFirst_StateIsPerConnection_PeerClose_EndsOnceWithoutError(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext first = await server.ConnectAsync();
        await using ConnectionContext second = await server.ConnectAsync();

        Assert.Equal(Frames("HELLO"), await first.ReceiveExactlyAsync(7));
        Assert.Equal(Frames("HELLO"), await second.ReceiveExactlyAsync(7));
        await first.SendAsync(Frames("a", "b"));
        await second.SendAsync(Frames("c"));
        Assert.Equal(Frames("1:a", "2:b"), await first.ReceiveExactlyAsync(10));
        Assert.Equal(Frames("1:c"), await second.ReceiveExactlyAsync(5));

        await first.CompleteOutputAsync();
        Assert.Empty(await first.ReceiveToEndAsync());
        (Session session, Exception? failure) = await log.NextEndAsync();

        Assert.Null(failure);
        Assert.Equal(2, session.Messages);
        Assert.Equal(1, log.Ends(session));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task ConnectionAbortedWhileWaitingForInput_EndRunsWithTheAbort(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync(Frames("x"));

        // Once the reply is here the loop has flushed it and waits for input: the abort reaches it in its read.
        if (transport.IsDatagram())
        {
            Assert.Equal(Frames("HELLO"), await client.ReceiveOnceAsync());
            Assert.Equal(Frames("1:x"), await client.ReceiveOnceAsync());
        }
        else
        {
            Assert.Equal(Frames("HELLO", "1:x"), await client.ReceiveExactlyAsync(12));
        }

        RegisteredConnection entry = Assert.Single(server.Services.GetRequiredService<ConnectionRegistry>().GetConnections());

        entry.Connection.Abort(new ConnectionAbortedException("The test aborted the connection."));
        (Session session, Exception? failure) = await log.NextEndAsync();

        Assert.Equal("The test aborted the connection.", Assert.IsType<ConnectionAbortedException>(failure).Message);
        Assert.Equal(1, log.Ends(session));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task HandlerAbortsTheConnection_EndRunsOnce(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Frames("abort"));
        (Session session, Exception? failure) = await log.NextEndAsync();

        // Aborted inside the handler, the loop sees the output complete (or the abort itself): either way the end hook
        // runs once, and nothing is an error.
        Assert.True(failure is null or ConnectionAbortedException, failure?.ToString());
        Assert.Equal(1, log.Ends(session));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task HandlerThrows_EndRunsWithThatException_AndTheHostLogsIt(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(Frames("throw"));
        (_, Exception? failure) = await log.NextEndAsync();

        Assert.Equal("handler failed", Assert.IsType<InvalidOperationException>(failure).Message);
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ProtocolFailed, category: LogEvents.Hosting.Category);
        Assert.Same(failure, Assert.Single(server.Logs.At(LogLevel.Error)).Exception);
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task InvalidInput_EndRunsWithTheInvalidFrameException(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext client = await server.ConnectAsync();

        await client.SendAsync(new byte[] { 0x7F, 0xFF });
        (_, Exception? failure) = await log.NextEndAsync();

        Assert.IsType<InvalidFrameException>(failure);
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task ServerStops_CloseRequestedHookSaysGoodbye_ThenEndRunsWithoutError(TestTransport transport)
    {
        var log = new LifecycleLog();
        await using TransportTestServer server = await StartAsync(transport, log);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync(Frames("x"));
        if (transport.IsDatagram())
        {
            Assert.Equal(Frames("HELLO"), await client.ReceiveOnceAsync());
            Assert.Equal(Frames("1:x"), await client.ReceiveOnceAsync());
        }
        else
        {
            Assert.Equal(Frames("HELLO", "1:x"), await client.ReceiveExactlyAsync(12));
        }

        Task stopping = server.StopAsync();
        Assert.Equal(Frames("BYE"), await client.ReceiveExactlyAsync(5));
        if (!transport.IsDatagram())
        {
            // A well-behaved peer closes its side once the server has said goodbye.
            Assert.Empty(await client.ReceiveToEndAsync());
            await client.CompleteOutputAsync();
        }

        (Session session, Exception? failure) = await log.NextEndAsync();
        await stopping.DefaultTimeout();

        Assert.Null(failure);
        Assert.True(session.CloseRequested);
        Assert.Equal(1, log.Ends(session));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    private static Task<TransportTestServer> StartAsync(TestTransport transport, LifecycleLog log) =>
        TransportTestServer.StartAsync<LifecycleProtocol>(transport, b => b.Host.Services.AddSingleton(log));

    private static byte[] Frames(params string[] payloads)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (string payload in payloads)
        {
            Framer.Write(output, Encoding.ASCII.GetBytes(payload));
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>What the protocol's hooks saw, for the test to await.</summary>
    private sealed class LifecycleLog
    {
        private readonly ConcurrentDictionary<Session, int> _ends = new();
        private readonly System.Threading.Channels.Channel<(Session, Exception?)> _ended =
            System.Threading.Channels.Channel.CreateUnbounded<(Session, Exception?)>();

        public void OnEnded(Session session, Exception? failure)
        {
            _ends.AddOrUpdate(session, 1, static (_, n) => n + 1);
            _ended.Writer.TryWrite((session, failure));
        }

        public int Ends(Session session) => _ends.GetValueOrDefault(session);

        public async Task<(Session Session, Exception? Failure)> NextEndAsync() =>
            await _ended.Reader.ReadAsync().AsTask().DefaultTimeout();
    }

    private sealed class Session
    {
        public int Messages { get; set; }

        public bool CloseRequested { get; set; }
    }

    /// <summary>
    /// Greets with HELLO, answers each message with "n:message" (n counts per connection), says BYE at a close
    /// request; "abort" aborts the connection, "throw" throws.
    /// </summary>
    private sealed class LifecycleProtocol(LifecycleLog log) : FramedProtocol<ReadOnlySequence<byte>, Session>
    {
        protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Framer;

        protected override Session CreateState(ConnectionContext connection) => new();

        protected override ValueTask OnConnectionStartedAsync(ConnectionContext connection, Session state)
        {
            Framer.Write(connection.Transport.Output, "HELLO"u8);
            return default;
        }

        protected override ValueTask OnMessageAsync(ConnectionContext connection, Session state, ReadOnlySequence<byte> message)
        {
            string text = Encoding.ASCII.GetString(message);
            switch (text)
            {
                case "abort":
                    connection.Abort(new ConnectionAbortedException("The test aborted the connection."));
                    return default;
                case "throw":
                    throw new InvalidOperationException("handler failed");
                default:
                    state.Messages++;
                    Framer.Write(connection.Transport.Output, Encoding.ASCII.GetBytes(state.Messages + ":" + text));
                    return default;
            }
        }

        protected override ValueTask OnCloseRequestedAsync(ConnectionContext connection, Session state)
        {
            state.CloseRequested = true;
            Framer.Write(connection.Transport.Output, "BYE"u8);
            return default;
        }

        protected override ValueTask OnConnectionEndedAsync(ConnectionContext connection, Session state, Exception? failure)
        {
            log.OnEnded(state, failure);
            return default;
        }
    }
}
