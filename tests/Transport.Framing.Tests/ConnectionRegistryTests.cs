using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Hosting;

namespace Transport.Framing.Tests;

/// <summary>
/// The connection registry the host fills: lookup by id and tag, live enumeration, groups, broadcast, the one-writer
/// guarantee, and the slow-consumer policies with their metrics, over every transport.
/// </summary>
public sealed class ConnectionRegistryTests
{
    private static readonly LengthPrefixedFramer Framer = new(prefixLength: 2, maxMessageSize: 60000);

    public static IEnumerable<object[]> AllTransports => TestTransports.All;

    public static IEnumerable<object[]> StreamTransports => TestTransports.Streams;

    public static IEnumerable<object[]> PolicyCases()
    {
        foreach (object[] row in TestTransports.Streams)
        {
            yield return [row[0], SlowConsumerPolicy.Drop];
            yield return [row[0], SlowConsumerPolicy.Disconnect];
        }
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task EveryConnection_IsFoundById_Listed_ThenGoneWhenItEnds(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync(transport);
        ConnectionRegistry registry = server.Services.GetRequiredService<ConnectionRegistry>();
        var clients = new List<ConnectionContext>();
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            ConnectionContext client = await server.ConnectAsync();
            clients.Add(client);
            ids.Add(await CallAsync(client, "id"));
        }

        try
        {
            string endpoint = server.Bindings[0].Name;
            Assert.Equal(ids.Order(), registry.GetConnections(endpoint).Select(c => c.ConnectionId).Order());
            Assert.All(ids, id => Assert.True(registry.TryGet(id, out RegisteredConnection? c) && c.Endpoint == endpoint));
            Assert.Empty(registry.GetConnections("no-such-endpoint"));

            Assert.True(registry.TryGet(ids[1], out RegisteredConnection? gone));
            gone.Connection.Abort(new ConnectionAbortedException("The test ends this connection."));
            await TestTimeouts.UntilAsync(() => !registry.TryGet(ids[1], out _));

            Assert.False(gone.IsOpen);
            Assert.Equal(new[] { ids[0], ids[2] }.Order(), registry.GetConnections().Select(c => c.ConnectionId).Order());
            Assert.Null(gone.Connection.Features.Get<RegisteredConnection>());
        }
        finally
        {
            foreach (ConnectionContext client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllTransports))]
    public async Task Broadcast_GroupAndTag_ReachExactlyTheirConnections(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync(transport);
        ConnectionRegistry registry = server.Services.GetRequiredService<ConnectionRegistry>();
        Room room = server.Services.GetRequiredService<Room>();
        await using ConnectionContext alice = await server.ConnectAsync();
        await using ConnectionContext bob = await server.ConnectAsync();
        await using ConnectionContext carol = await server.ConnectAsync();
        Assert.Equal("ok", await CallAsync(alice, "join"));
        Assert.Equal("ok", await CallAsync(bob, "join"));
        Assert.Equal("ok", await CallAsync(carol, "tag:carol"));

        Assert.Equal(2, await room.Members.SendAsync(Frame("to the room")));
        Assert.Equal(1, await registry.SendToTaggedAsync("carol", Frame("to carol")));
        Assert.Equal(3, await registry.BroadcastAsync(Frame("to everyone"), server.Bindings[0].Name));

        Assert.Equal("to the room", await ReceiveFrameAsync(alice));
        Assert.Equal("to everyone", await ReceiveFrameAsync(alice));
        Assert.Equal("to the room", await ReceiveFrameAsync(bob));
        Assert.Equal("to everyone", await ReceiveFrameAsync(bob));
        Assert.Equal("to carol", await ReceiveFrameAsync(carol));
        Assert.Equal("to everyone", await ReceiveFrameAsync(carol));
        Assert.Equal("carol", Assert.Single(registry.GetTagged("carol")).Tags.Single());

        Assert.Equal("ok", await CallAsync(bob, "leave"));
        Assert.Equal(1, await room.Members.SendAsync(Frame("bob left")));
        Assert.Equal("bob left", await ReceiveFrameAsync(alice));

        // A member leaves its groups and tags when its connection ends; nothing stale is left to send to.
        string aliceId = await CallAsync(alice, "id");
        Assert.True(registry.TryGet(aliceId, out RegisteredConnection? entry));
        entry.Connection.Abort(new ConnectionAbortedException("The test ends this connection."));
        RegisteredConnection carolEntry = Assert.Single(registry.GetTagged("carol"));
        carolEntry.Connection.Abort(new ConnectionAbortedException("The test ends this connection."));
        await TestTimeouts.UntilAsync(() => room.Members.Count == 0 && !registry.GetTagged("carol").Any());
        Assert.Equal(0, await room.Members.SendAsync(Frame("nobody")));
        Assert.Equal(0, await registry.SendToTaggedAsync("carol", Frame("nobody")));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task QueuedMessages_NeverInterleaveWithTheConnectionsOwnReplies(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync(transport);
        Room room = server.Services.GetRequiredService<Room>();
        await using ConnectionContext client = await server.ConnectAsync();
        Assert.Equal("ok", await CallAsync(client, "join"));

        // Replies of 40 KB written in four pieces with a yield between them, while another thread sends to the room.
        const int Replies = 30;
        using var stop = new CancellationTokenSource();
        Task<int> broadcasting = Task.Run(async () =>
        {
            int sent = 0;
            while (!stop.IsCancellationRequested)
            {
                sent += await room.Members.SendAsync(Frame("push " + sent), SlowConsumerPolicy.Wait, stop.Token);
                await Task.Yield();
            }

            return sent;
        });
        // The broadcaster is running once its first message has arrived; only then do the replies start, so they
        // are written while pushes keep coming (on a loaded machine the task may start late).
        Assert.Equal("push 0", await ReceiveFrameAsync(client));
        await client.SendAsync(Enumerable.Range(0, Replies).SelectMany(_ => Frame("big")).ToArray());

        int replies = 0;
        int pushes = 1;
        while (replies < Replies)
        {
            string frame = await ReceiveFrameAsync(client);
            if (frame.StartsWith("push ", StringComparison.Ordinal))
            {
                Assert.Equal("push " + pushes, frame);
                pushes++;
            }
            else
            {
                Assert.Equal(new string('A', 40000), frame);
                replies++;
            }
        }

        await stop.CancelAsync();
        try
        {
            await broadcasting.DefaultTimeout();
        }
        catch (OperationCanceledException)
        {
            // Stopped while waiting for room in the outbox.
        }

    }

    [Theory]
    [MemberData(nameof(PolicyCases))]
    public async Task SlowConsumer_PastTheOutboxLimit_IsDroppedOrDisconnected_SenderNeverWaits_AndItIsCounted(TestTransport transport, SlowConsumerPolicy policy)
    {
        await using TransportTestServer server = await StartAsync(transport, writeBuffer: 4096);
        using var metrics = new OutboxMetrics(server);
        await using ConnectionContext client = await server.ConnectAsync();
        string id = await CallAsync(client, "id");
        Assert.True(server.Services.GetRequiredService<ConnectionRegistry>().TryGet(id, out RegisteredConnection? consumer));
        consumer.MaxOutboxSize = 16 * 1024;
        byte[] message = Frame(new string('m', 1000));

        // The client reads nothing: kernel buffers, the output pipe and then the outbox fill up.
        int queued = 0;
        int refused = 0;
        while (refused == 0 && queued < 1_000_000)
        {
            if (await SendNeverWaitingAsync(consumer, message, policy))
            {
                queued++;
                Assert.True(consumer.QueuedBytes <= consumer.MaxOutboxSize);
            }
            else
            {
                refused++;
            }
        }

        Assert.True(refused > 0, "the outbox never filled");
        if (policy == SlowConsumerPolicy.Drop)
        {
            Assert.True(consumer.IsOpen);

            // Until the socket's buffers stop taking bytes (they grow as they fill) the drainer may still empty the
            // outbox now and then: fill it again until a send is dropped, and look at the gauge right after.
            await TestTimeouts.UntilAsync(() =>
            {
                while (SendNeverWaitingAsync(consumer, message, policy).Result)
                {
                    queued++;
                }

                refused++;
                return metrics.Measure("transport.outbox.size") > 0;
            });
            Assert.Equal(refused, metrics.Count("transport.outbox.dropped"));

            // The consumer catches up: every queued message arrives whole, before the reply to its next request; the
            // dropped one never does, and the next send fits again.
            await client.SendAsync(Frame("id"));
            for (int i = 0; i < queued; i++)
            {
                Assert.Equal(1000, (await ReceiveFrameAsync(client)).Count(c => c == 'm'));
            }

            Assert.Equal(id, await ReceiveFrameAsync(client));
            Assert.True(await consumer.SendAsync(message, policy));
            Assert.Equal(1000, (await ReceiveFrameAsync(client)).Length);
        }
        else
        {
            Assert.False(consumer.IsOpen);
            Assert.Equal(0, consumer.QueuedBytes);
            Assert.Equal(1, metrics.Count("transport.outbox.disconnected"));
            await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                while (true)
                {
                    await ReceiveFrameAsync(client);
                }
            });
            Assert.Contains(server.Logs.Entries, e => e.Message.Contains("disconnected as a slow consumer", StringComparison.Ordinal));
        }

        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Theory]
    [MemberData(nameof(StreamTransports))]
    public async Task SlowConsumer_WaitPolicy_CompletesWhenTheConsumerReads_AndEveryMessageArrives(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync(transport, writeBuffer: 4096);
        await using ConnectionContext client = await server.ConnectAsync();
        string id = await CallAsync(client, "id");
        Assert.True(server.Services.GetRequiredService<ConnectionRegistry>().TryGet(id, out RegisteredConnection? consumer));
        consumer.MaxOutboxSize = 16 * 1024;
        var group = new ConnectionGroup(SlowConsumerPolicy.Wait);
        Assert.True(group.Add(consumer));

        int sent = 0;
        ValueTask<int> send;
        while ((send = group.SendAsync(Frame(sent.ToString("D5", System.Globalization.CultureInfo.InvariantCulture) + new string('w', 995)))).IsCompleted)
        {
            Assert.Equal(1, await send);
            sent++;
        }

        Task<int> waiting = send.AsTask();
        for (int i = 0; i <= sent; i++)
        {
            Assert.StartsWith(i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture), await ReceiveFrameAsync(client), StringComparison.Ordinal);
        }

        Assert.Equal(1, await waiting.DefaultTimeout());
    }

    private static ValueTask<bool> SendNeverWaitingAsync(RegisteredConnection consumer, byte[] message, SlowConsumerPolicy policy)
    {
        ValueTask<bool> send = consumer.SendAsync(message, policy);
        Assert.True(send.IsCompleted, "the sender waited for a slow consumer");
        return send;
    }

    private static Task<TransportTestServer> StartAsync(TestTransport transport, int? writeBuffer = null) =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddMetrics();
            b.Host.Services.AddSingleton<Room>();
            b.Transport.AddProtocol<RoomProtocol>("room").Listen(b.ListenUrl(transport), "room", limits =>
            {
                if (writeBuffer is { } size)
                {
                    limits.MaxWriteBufferSize = size;
                }
            });
        });

    private static byte[] Frame(string payload)
    {
        var output = new ArrayBufferWriter<byte>();
        Framer.Write(output, Encoding.ASCII.GetBytes(payload));
        return output.WrittenSpan.ToArray();
    }

    private static async Task<string> CallAsync(ConnectionContext client, string command)
    {
        await client.SendAsync(Frame(command));
        return await ReceiveFrameAsync(client);
    }

    private static async Task<string> ReceiveFrameAsync(ConnectionContext client)
    {
        byte[] prefix = await client.ReceiveExactlyAsync(2);
        return Encoding.ASCII.GetString(await client.ReceiveExactlyAsync(BinaryPrimitives.ReadUInt16BigEndian(prefix)));
    }

    /// <summary>Shared state of the protocol, a singleton from DI: one chat room.</summary>
    private sealed class Room
    {
        public ConnectionGroup Members { get; } = new();
    }

    /// <summary>"id" answers the connection id, "join"/"leave" the room, "tag:x" tags, "big" answers 40 KB in four writes.</summary>
    private sealed class RoomProtocol(Room room) : FramedProtocol<ReadOnlySequence<byte>>
    {
        protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Framer;

        protected override async ValueTask OnMessageAsync(ConnectionContext connection, ReadOnlySequence<byte> message)
        {
            RegisteredConnection me = connection.Features.Get<RegisteredConnection>()!;
            string text = Encoding.ASCII.GetString(message);
            void Reply(string text) => Framer.Write(connection.Transport.Output, Encoding.ASCII.GetBytes(text));
            switch (text)
            {
                case "id":
                    Reply(me.ConnectionId);
                    break;
                case "join":
                    Reply(room.Members.Add(me) ? "ok" : "already");
                    break;
                case "leave":
                    Reply(room.Members.Remove(me) ? "ok" : "not a member");
                    break;
                case "big":
                    Span<byte> prefix = connection.Transport.Output.GetSpan(2);
                    BinaryPrimitives.WriteUInt16BigEndian(prefix, 40000);
                    connection.Transport.Output.Advance(2);
                    for (int i = 0; i < 4; i++)
                    {
                        connection.Transport.Output.Write(Encoding.ASCII.GetBytes(new string('A', 10000)));
                        await Task.Yield();
                    }

                    break;
                default:
                    Reply(text.StartsWith("tag:", StringComparison.Ordinal) && me.AddTag(text[4..]) ? "ok" : "?");
                    break;
            }
        }
    }

    /// <summary>The registry's instruments of one test host, read with a MeterListener.</summary>
    private sealed class OutboxMetrics : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, long> _counts = [];
        private readonly Dictionary<string, long> _gauges = [];

        public OutboxMetrics(TransportTestServer server)
        {
            object scope = server.Services.GetRequiredService<IMeterFactory>();
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Scope == scope && instrument.Name.StartsWith("transport.outbox.", StringComparison.Ordinal))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
            {
                lock (_counts)
                {
                    Dictionary<string, long> target = instrument.GetType().Name.StartsWith("Observable", StringComparison.Ordinal) ? _gauges : _counts;
                    target[instrument.Name] = target.GetValueOrDefault(instrument.Name) + value;
                }
            });
            _listener.Start();
        }

        public long Count(string name)
        {
            lock (_counts)
            {
                return _counts.GetValueOrDefault(name);
            }
        }

        public long Measure(string name)
        {
            lock (_counts)
            {
                _gauges.Clear();
            }

            _listener.RecordObservableInstruments();
            lock (_counts)
            {
                return _gauges.GetValueOrDefault(name);
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
