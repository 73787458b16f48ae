using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;
using Transport.Udp;

namespace Transport.Tests;

/// <summary>UDP: each peer a connection, each read one datagram, each flush one datagram; bounded under abuse.</summary>
public sealed class UdpTransportTests
{
    [Fact]
    public async Task EachDatagram_IsEchoedAsExactlyOneDatagram_WithTheSameBytes()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        await using ConnectionContext client = await server.ConnectAsync();
        byte[][] datagrams = [ConnectionTestExtensions.RandomBytes(1), ConnectionTestExtensions.RandomBytes(1400), ConnectionTestExtensions.RandomBytes(60_000), ConnectionTestExtensions.RandomBytes(7)];

        foreach (byte[] datagram in datagrams)
        {
            await client.SendAsync(datagram);
        }

        foreach (byte[] datagram in datagrams)
        {
            Assert.Equal(datagram, await client.ReceiveOnceAsync());
        }
    }

    [Fact]
    public async Task ZeroLengthDatagram_IsDeliveredAndEchoed()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        using Socket peer = RawPeer(out IPEndPoint target, server);

        await SendToAsync(peer, [], target);
        await SendToAsync(peer, "after"u8.ToArray(), target);

        Assert.Equal(0, await ReceiveAsync(peer, new byte[100]));
        var buffer = new byte[100];
        Assert.Equal(5, await ReceiveAsync(peer, buffer));
        Assert.Equal("after"u8.ToArray(), buffer[..5]);
    }

    [Fact]
    public async Task TwoHundredPeers_EachGetsOnlyItsOwnDatagrams()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);

        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            await using ConnectionContext client = await server.ConnectAsync();
            for (int n = 0; n < 10; n++)
            {
                byte[] payload = ConnectionTestExtensions.RandomBytes(16 + ((i * 7 + n) % 1200));
                await client.SendAsync(payload);
                Assert.Equal(payload, await client.ReceiveOnceAsync());
            }
        })).DefaultTimeout();
    }

    [Fact]
    public async Task FlushLargerThanMaxDatagram_FailsWithClearException_NothingSent()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        await using ConnectionContext client = await server.ConnectAsync();

        InvalidOperationException ex = await Assert.ThrowsAsync<InvalidOperationException>(
            async () => await client.Transport.Output.WriteAsync(new byte[70_000]));

        Assert.Contains("largest datagram size of 65507 bytes", ex.Message, StringComparison.Ordinal);
        Assert.Contains("it was discarded", ex.Message, StringComparison.Ordinal);
        await client.SendAsync("small"u8.ToArray());
        Assert.Equal("small"u8.ToArray(), await client.ReceiveOnceAsync());
    }

    [Fact]
    public async Task OversizeDatagramReceived_IsDroppedCountedAndLoggedOncePerPeer_NeverDeliveredTruncated()
    {
        await using TransportTestServer server = await StartUdpAsync(o => o.MaxDatagramSize = 1000);
        using Socket peer = RawPeer(out IPEndPoint target, server);

        await SendToAsync(peer, new byte[2000], target);
        await SendToAsync(peer, new byte[1001], target);
        await SendToAsync(peer, "ok"u8.ToArray(), target);

        var buffer = new byte[4000];
        Assert.Equal(2, await ReceiveAsync(peer, buffer));
        Assert.Equal("ok"u8.ToArray(), buffer[..2]);
        Assert.Single(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("larger than 1000 bytes", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SessionLimit_NewPeersAreRefusedAndCounted_ExistingSessionsKeepWorking()
    {
        await using TransportTestServer server = await StartUdpAsync(o => o.MaxSessions = 3);
        using UdpMeasurements refused = UdpCounter(server, "transport.udp.datagrams", outcome: "refused");
        var peers = Enumerable.Range(0, 10).Select(_ => RawPeer(out IPEndPoint _, server)).ToList();
        IPEndPoint target = UdpTarget(server);
        try
        {
            var buffer = new byte[16];
            for (int i = 0; i < 3; i++)
            {
                await SendToAsync(peers[i], new[] { (byte)i }, target);
                Assert.Equal(1, await ReceiveAsync(peers[i], buffer));
            }

            for (int i = 3; i < 10; i++)
            {
                await SendToAsync(peers[i], new[] { (byte)i }, target);
            }

            // One receive loop handles datagrams in order: once this answer is back, the seven above were handled.
            await SendToAsync(peers[0], "again"u8.ToArray(), target);
            Assert.Equal(5, await ReceiveAsync(peers[0], buffer));

            Assert.All(peers.Skip(3), p => Assert.Equal(0, p.Available));
            Assert.Equal(7, Total(refused));
            Assert.Contains(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("session limit of 3 reached", StringComparison.Ordinal));
        }
        finally
        {
            peers.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task TenThousandPeers_SessionsStayBounded_ExcessRefused_FirstPeerStillServed()
    {
        // No session may end by itself during the test: the count of refusals assumes the table only fills, and a slow
        // run past the default 60 s idle timeout would free slots for peers the expectation counts as refused (a suspect
        // for a rare off-by-one seen in full runs; the sessions' own count below now says whether any ended).
        await using TransportTestServer server = await StartUdpAsync(o =>
        {
            o.MaxSessions = 1000;
            o.SessionIdleTimeout = TimeSpan.FromHours(1);
        });
        using UdpMeasurements refused = UdpCounter(server, "transport.udp.datagrams", outcome: "refused");
        using UdpMeasurements sessions = UdpCounter(server, "transport.udp.active_sessions");
        IPEndPoint target = UdpTarget(server);
        using Socket first = RawPeer(out IPEndPoint _, server);
        var buffer = new byte[16];
        await SendToAsync(first, "first"u8.ToArray(), target);
        Assert.Equal(5, await ReceiveAsync(first, buffer));

        // Closed sockets' ports may be reused by later ones: such a datagram belongs to an existing session.
        var sessionPorts = new HashSet<int> { ((IPEndPoint)first.LocalEndPoint!).Port };
        int expectedRefused = 0;
        for (int batch = 0; batch < 20; batch++)
        {
            var peers = Enumerable.Range(0, 500).Select(_ => RawPeer(out IPEndPoint _, server)).ToList();
            foreach (Socket peer in peers)
            {
                int port = ((IPEndPoint)peer.LocalEndPoint!).Port;
                if (!sessionPorts.Contains(port))
                {
                    if (sessionPorts.Count < 1000)
                    {
                        sessionPorts.Add(port);
                    }
                    else
                    {
                        expectedRefused++;
                    }
                }

                peer.SendTo("x"u8, SocketFlags.None, target);
            }

            // The first peer's answer proves the batch before it was handled (one receive loop, in order).
            await SendToAsync(first, "first"u8.ToArray(), target);
            Assert.Equal(5, await ReceiveAsync(first, buffer));
            peers.ForEach(p => p.Dispose());
        }

        // The first peer's answer orders it after the batch only per CPU: loopback datagrams wait in the sending CPU's
        // backlog, and a sender that moved between CPUs mid-batch can have the last few handled just after it (seen as one
        // refusal short in a full run). They are handled, though: wait for the count, then check it is exact.
        await TestTimeouts.UntilAsync(() => Total(refused) >= expectedRefused);
        Assert.Equal(1000, Peak(sessions));
        Assert.Equal(1000, Total(sessions)); // none ended meanwhile
        Assert.True(expectedRefused > 8000, "most peers were over the limit");
        Assert.Equal(expectedRefused, Total(refused));
    }

    [Fact]
    public async Task SlowProtocol_QueueBoundHolds_ExcessDatagramsDroppedAndCounted()
    {
        var gate = new Gate();
        await using TransportTestServer server = await TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton(gate);
            b.Host.Services.Configure<UdpTransportOptions>(o => o.MaxQueuedDatagrams = 4);
            b.Transport.AddProtocol<GatedEchoProtocol>("gated").Listen(b.ListenUrl(TestTransport.Udp), "gated");
        });
        using UdpMeasurements dropped = UdpCounter(server, "transport.udp.datagrams", outcome: "queue_full");
        using Socket peer = RawPeer(out IPEndPoint target, server);

        await SendToAsync(peer, new byte[] { 0 }, target);
        await gate.FirstRead.Task.DefaultTimeout();
        for (byte i = 1; i < 20; i++)
        {
            await SendToAsync(peer, new[] { i }, target);
        }

        // The protocol holds datagram 0, four more wait in the queue, fifteen are dropped.
        await dropped.WaitForMeasurementsAsync(15).DefaultTimeout();
        Assert.Equal(15, Total(dropped));
        gate.Open.SetResult();
        var buffer = new byte[16];
        var echoed = new List<byte>();
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(1, await ReceiveAsync(peer, buffer));
            echoed.Add(buffer[0]);
        }

        Assert.Equal(new byte[] { 0, 1, 2, 3, 4 }, echoed);
        await SendToAsync(peer, new byte[] { 99 }, target);
        Assert.Equal(1, await ReceiveAsync(peer, buffer));
        Assert.Equal(99, buffer[0]);
    }

    [Fact]
    public async Task PeerVanished_IcmpUnreachable_ListenerKeepsServingOthers()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        IPEndPoint target = UdpTarget(server);
        for (int i = 0; i < 20; i++)
        {
            using Socket vanishing = RawPeer(out IPEndPoint _, server);
            vanishing.SendTo("bye"u8, SocketFlags.None, target);
        }

        using Socket survivor = RawPeer(out IPEndPoint _, server);
        var buffer = new byte[16];
        await SendToAsync(survivor, "alive"u8.ToArray(), target);

        Assert.Equal(5, await ReceiveAsync(survivor, buffer));
        Assert.Empty(server.Logs.At(LogLevel.Error));
    }

    [Fact]
    public async Task IdleSession_Ends_AndTheSamePeerGetsANewSession()
    {
        await using TransportTestServer server = await StartUdpAsync(o => o.SessionIdleTimeout = TimeSpan.FromMilliseconds(200));
        using Socket peer = RawPeer(out IPEndPoint target, server);
        var buffer = new byte[16];
        await SendToAsync(peer, "one"u8.ToArray(), target);
        Assert.Equal(3, await ReceiveAsync(peer, buffer));

        await server.Logs.WaitForEventAsync(LogEvents.Udp.SessionIdle, category: LogEvents.Udp.Category);
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.ConnectionClosed, category: LogEvents.Hosting.Category);
        await SendToAsync(peer, "two"u8.ToArray(), target);

        Assert.Equal(3, await ReceiveAsync(peer, buffer));
        Assert.Equal("two"u8.ToArray(), buffer[..3]);
    }

    [Fact]
    public async Task ManyIdleSessions_AllEndInTheSameSweep()
    {
        const int Peers = 300;
        await using TransportTestServer server = await StartUdpAsync(o => o.SessionIdleTimeout = TimeSpan.FromSeconds(1));
        var peers = new List<Socket>();
        try
        {
            IPEndPoint target = UdpTarget(server);
            for (int i = 0; i < Peers; i++)
            {
                peers.Add(RawPeer(out _, server));
            }

            // 300 datagrams at once can overflow the server socket's receive buffer on a loaded machine (the kernel drops
            // what does not fit, as UDP may): a peer that gets no answer sends again, as a UDP client does.
            await Task.WhenAll(peers.Select(p => SendUntilAnsweredAsync(p, "hi"u8.ToArray(), target)));

            // A sweep runs every 250 ms; one session per sweep would need 75 s, past the test timeout.
            await server.Logs.WaitForEventAsync(LogEvents.Udp.SessionIdle, Peers, LogEvents.Udp.Category);
            Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        }
        finally
        {
            foreach (Socket peer in peers)
            {
                peer.Dispose();
            }
        }
    }

    [Fact]
    public async Task ClientToPortNobodyListensOn_InputEndsWithConnectionReset()
    {
        await using TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp);
        using var unused = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        unused.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)unused.LocalEndPoint!).Port;
        unused.Dispose();
        await using ConnectionContext client = await server.Client.ConnectAsync($"udp://127.0.0.1:{port}").DefaultTimeout();

        await client.SendAsync("anyone?"u8.ToArray());

        await Assert.ThrowsAsync<ConnectionResetException>(() => client.ReceiveOnceAsync());
    }

    [Fact]
    public async Task HostStop_EndsOpenSessionsWithoutWaitingForTheDeadline()
    {
        TransportTestServer server = await EchoServer.StartAsync(TestTransport.Udp, l => l.ShutdownTimeout = TimeSpan.FromSeconds(25));
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("x"u8.ToArray());
        await client.ReceiveOnceAsync();

        await server.StopAsync();

        Assert.DoesNotContain(server.Logs.At(LogLevel.Warning), e => e.Message.Contains("aborting", StringComparison.Ordinal));
        await server.DisposeAsync();
    }

    private static Task<TransportTestServer> StartUdpAsync(Action<UdpTransportOptions> options) =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.Configure(options);
            b.Transport.AddProtocol<EchoProtocol>("echo").Listen(b.ListenUrl(TestTransport.Udp), "echo");
        });

    private static IPEndPoint UdpTarget(TransportTestServer server) => (IPEndPoint)((UdpEndPoint)server.EndPoint).Address;

    private static Socket RawPeer(out IPEndPoint target, TransportTestServer server)
    {
        target = UdpTarget(server);
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    private static Task SendToAsync(Socket socket, byte[] datagram, IPEndPoint target) =>
        socket.SendToAsync(datagram.AsMemory(), SocketFlags.None, target).AsTask().DefaultTimeout();

    /// <summary>Sends <paramref name="datagram"/> every 200 ms until the echo comes back (within the default timeout).</summary>
    private static async Task SendUntilAnsweredAsync(Socket socket, byte[] datagram, IPEndPoint target)
    {
        var buffer = new byte[datagram.Length + 16];
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        while (true)
        {
            await SendToAsync(socket, datagram, target);
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            attempt.CancelAfter(TimeSpan.FromMilliseconds(200));
            try
            {
                int received = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, attempt.Token);
                Assert.Equal(datagram, buffer.AsSpan(0, received).ToArray());
                return;
            }
            catch (OperationCanceledException) when (!timeout.IsCancellationRequested)
            {
                // No answer yet: the datagram or its echo was dropped; send again.
            }
        }
    }

    private static async Task<int> ReceiveAsync(Socket socket, byte[] buffer) =>
        await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().DefaultTimeout();

    private sealed class Gate
    {
        public TaskCompletionSource FirstRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class GatedEchoProtocol(Gate gate) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            System.IO.Pipelines.ReadResult first = await input.ReadAsync();
            byte[] held = System.Buffers.BuffersExtensions.ToArray(first.Buffer);
            input.AdvanceTo(first.Buffer.End);
            gate.FirstRead.SetResult();
            await gate.Open.Task.WaitAsync(connection.ConnectionClosed);
            await connection.Transport.Output.WriteAsync(held);
            await new EchoProtocol().OnConnectedAsync(connection);
        }
    }

    /// <summary>
    /// One of the UDP transport's instruments, as the server's own <see cref="IMeterFactory"/> records it; for
    /// <c>transport.udp.datagrams</c>, the measurements of one <c>transport.udp.outcome</c>.
    /// </summary>
    private static UdpMeasurements UdpCounter(TransportTestServer server, string name, string? outcome = null) =>
        new(new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", name), outcome);

    private static long Total(UdpMeasurements counter) => counter.Snapshot().Sum(m => m.Value);

    /// <summary>The highest value an up-down counter reached, adding its measurements in the order they were recorded.</summary>
    private static long Peak(UdpMeasurements counter)
    {
        long value = 0;
        long peak = 0;
        foreach (CollectedMeasurement<long> measurement in counter.Snapshot())
        {
            value += measurement.Value;
            peak = Math.Max(peak, value);
        }

        return peak;
    }

    private sealed class UdpMeasurements(MetricCollector<long> collector, string? outcome) : IDisposable
    {
        public IEnumerable<CollectedMeasurement<long>> Snapshot() => Matching(collector.GetMeasurementSnapshot());

        /// <summary>Completes once this outcome has <paramref name="count"/> measurements, waking on each new one.</summary>
        public async Task WaitForMeasurementsAsync(int count)
        {
            while (true)
            {
                // One snapshot for both the check and the wait: counting again for the wait would miss a measurement
                // that arrived in between and then wait for one more that never comes.
                IReadOnlyList<CollectedMeasurement<long>> all = collector.GetMeasurementSnapshot();
                if (Matching(all).Count() >= count)
                {
                    return;
                }

                await collector.WaitForMeasurementsAsync(all.Count + 1);
            }
        }

        private IEnumerable<CollectedMeasurement<long>> Matching(IEnumerable<CollectedMeasurement<long>> measurements) =>
            measurements.Where(m => outcome is null || Equals(m.Tags["transport.udp.outcome"], outcome));

        public void Dispose() => collector.Dispose();
    }
}
