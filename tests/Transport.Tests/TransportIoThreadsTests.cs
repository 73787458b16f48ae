using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>
/// The socket transport's own I/O threads (<see cref="SocketTransportOptions.PreferTransportIoThreads"/>): where the
/// protocol runs, and the edges of a non-blocking, edge-triggered design: a FIN that comes with the last data, a send
/// that waits for a peer that does not read, a protocol that blocks. Each case also runs on .NET's socket engine.
/// </summary>
public sealed class TransportIoThreadsTests
{
    private static readonly AsyncLocal<string?> s_starter = new();

    public static TheoryData<TestTransport, bool> Cases => new()
    {
        { TestTransport.Tcp, true },
        { TestTransport.Tcp, false },
        { TestTransport.Unix, true },
        { TestTransport.Unix, false },
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task UnderInlineScheduling_TheProtocolRunsOnTheTransportsIoThread_UnlessTurnedOff(bool ioThreads)
    {
        var seen = new ThreadSeen();
        await using TransportTestServer server = await TransportTestServer.StartAsync<ThreadNameProtocol>(TestTransport.Tcp, b =>
        {
            b.Host.Services.AddSingleton(seen);
            b.Host.Services.Configure<SocketTransportOptions>(o => o.PreferTransportIoThreads = ioThreads);
        });

        await using ConnectionContext client = await server.ConnectAsync();
        // A byte at a time until one arrives while the protocol waits in a read (one that arrives first completes the read at once).
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        while (!seen.Name.Task.IsCompleted)
        {
            await client.SendAsync("x"u8.ToArray());
            await Task.WhenAny(seen.Name.Task, Task.Delay(50, timeout.Token));
        }

        string? thread = await seen.Name.Task;

        bool expected = ioThreads && OperatingSystem.IsLinux();
        Assert.True(expected == (thread?.StartsWith(".NET Transport epoll", StringComparison.Ordinal) == true), $"the protocol resumed on '{thread}'");
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task UnderInlineScheduling_TheProtocolStartsOnTheIoThread_NotOnTheThreadPool(bool ioThreads, bool inlineScheduling)
    {
        var seen = new ThreadSeen();
        await using TransportTestServer server = await TransportTestServer.StartAsync<StartThreadProtocol>(TestTransport.Tcp, b =>
        {
            b.Host.Services.AddSingleton(seen);
            b.Host.Services.Configure<SocketTransportOptions>(o =>
            {
                o.PreferTransportIoThreads = ioThreads;
                o.InlineScheduling = inlineScheduling;
            });
        });

        // Several connections: each is accepted on one I/O thread and may belong to another (it starts on its own).
        for (int i = 0; i < 4; i++)
        {
            seen.Reset();
            using Socket client = await ConnectRawAsync(server);
            string? thread = await seen.Name.Task.DefaultTimeout();

            bool expected = ioThreads && inlineScheduling && OperatingSystem.IsLinux();
            Assert.True(expected == (thread?.StartsWith(".NET Transport epoll", StringComparison.Ordinal) == true), $"the protocol started on '{thread}'");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheProtocolDoesNotInheritTheExecutionContextOfWhoStartedTheHost(bool ioThreads)
    {
        var seen = new ThreadSeen();
        s_starter.Value = "the code that started the host";
        TransportTestServer server;
        try
        {
            server = await TransportTestServer.StartAsync<StartThreadProtocol>(TestTransport.Tcp, b =>
            {
                b.Host.Services.AddSingleton(seen);
                b.Host.Services.Configure<SocketTransportOptions>(o => o.PreferTransportIoThreads = ioThreads);
            });
        }
        finally
        {
            s_starter.Value = null;
        }

        await using (server)
        {
            for (int i = 0; i < 4; i++)
            {
                seen.Reset();
                using Socket client = await ConnectRawAsync(server);
                Assert.Null(await seen.Starter.Task.DefaultTimeout());
            }
        }
    }

    [Fact]
    public async Task IoThread_ACallbackPostedToItThrows_ItIsLogged_AndTheThreadRunsTheNext()
    {
        if (!Transport.Sockets.Internal.Epoll.EpollNative.IsSupported)
        {
            return;
        }

        using var logs = new TestLoggerProvider();
        var thread = new Transport.Sockets.Internal.Epoll.EpollThread(99, logs.CreateLogger("Transport.Sockets"));
        var ran = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);

        thread.Run(static _ => throw new InvalidOperationException("a plugin's start failed"), null);
        thread.Run(static state => ((TaskCompletionSource<string?>)state!).TrySetResult(Thread.CurrentThread.Name), ran);

        Assert.Equal(".NET Transport epoll 99", await ran.Task.DefaultTimeout());
        await logs.WaitForEventAsync(LogEvents.Sockets.IoThreadCallbackFailed, category: LogEvents.Sockets.Category);
        TestLogEntry failed = Assert.Single(logs.Entries, e => e.EventId.Id == LogEvents.Sockets.IoThreadCallbackFailed);
        Assert.IsType<InvalidOperationException>(failed.Exception);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task DataAndFinInOneSegment_TheProtocolGetsAllTheDataThenTheEnd(TestTransport transport, bool ioThreads)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<CountToEndProtocol>(transport,
            b => b.Host.Services.Configure<SocketTransportOptions>(o => o.PreferTransportIoThreads = ioThreads));

        // Many rounds: whether the FIN's event is handled before, during or after the receive that takes the data is a race.
        for (int round = 0; round < 200; round++)
        {
            using Socket client = await ConnectRawAsync(server);
            byte[] payload = Encoding.ASCII.GetBytes("payload " + round);
            client.Send(payload);
            client.Shutdown(SocketShutdown.Send);

            Assert.Equal(payload.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), await ReceiveToEndAsync(client).DefaultTimeout());
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task PeerThatDoesNotRead_TheSendWaits_AbortEndsItAndTheConnection(TestTransport transport, bool ioThreads)
    {
        var writer = new StalledWriter();
        await using TransportTestServer server = await TransportTestServer.StartAsync<FloodProtocol>(transport, b =>
        {
            b.Host.Services.AddSingleton(writer);
            b.Host.Services.Configure<SocketTransportOptions>(o => o.PreferTransportIoThreads = ioThreads);
        });

        using Socket client = await ConnectRawAsync(server);
        client.ReceiveBufferSize = 4096;
        client.Send("go"u8);

        // The kernel's buffers are full and the output pipe reached its limit: the transport's send is waiting.
        ConnectionContext connection = await writer.Stalled.Task.DefaultTimeout();
        connection.Abort(new ConnectionAbortedException("The test gave up on the slow reader."));

        Exception? ended = await writer.Ended.Task.DefaultTimeout();
        Assert.NotNull(ended);
        // And the connection ends. Over TCP it is reset, its unsent bytes dropped: the client does not have to read them all
        // to see the end. (A Unix socket's bytes are already in the client's queue: it reads them, then the end.)
        var scratch = new byte[64 * 1024];
        SocketError end = SocketError.Success;
        try
        {
            while (await client.ReceiveAsync(scratch, SocketFlags.None).DefaultTimeout() > 0)
            {
            }
        }
        catch (SocketException ex)
        {
            end = ex.SocketErrorCode;
        }

        Assert.Equal(transport == TestTransport.Unix ? SocketError.Success : SocketError.ConnectionReset, end);
    }

    [Fact]
    public async Task ProtocolThatBlocks_WithoutInlineScheduling_DoesNotStallTheOtherConnections()
    {
        using var gate = new BlockingGate(4);
        await using TransportTestServer server = await TransportTestServer.StartAsync<BlockingEchoProtocol>(TestTransport.Tcp, b =>
        {
            b.Host.Services.AddSingleton(gate);
            b.Host.Services.Configure<SocketTransportOptions>(o => o.InlineScheduling = false);
        });

        try
        {
            // More blocked protocols than the process has I/O threads: each would hold one if it ran there.
            var stuck = new List<ConnectionContext>();
            for (int i = 0; i < 4; i++)
            {
                ConnectionContext c = await server.ConnectAsync();
                await c.SendAsync("block"u8.ToArray());
                stuck.Add(c);
            }

            Assert.True(await Task.Run(() => gate.Blocked.Wait(TestTimeouts.Default)), "the blocking protocols did not all start");

            await using ConnectionContext other = await server.ConnectAsync();
            await other.SendAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await other.ReceiveExactlyAsync(4).DefaultTimeout());

            gate.Release.Set();
            foreach (ConnectionContext c in stuck)
            {
                Assert.Equal("block"u8.ToArray(), await c.ReceiveExactlyAsync(5).DefaultTimeout());
                await c.DisposeAsync();
            }
        }
        finally
        {
            gate.Release.Set();
        }
    }

    private static async Task<Socket> ConnectRawAsync(TransportTestServer server)
    {
        System.Net.EndPoint endpoint = server.EndPoint;
        var socket = endpoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint).DefaultTimeout();
        return socket;
    }

    private static async Task<string> ReceiveToEndAsync(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[256];
        int n;
        while ((n = await socket.ReceiveAsync(buffer)) > 0)
        {
            received.Write(buffer, 0, n);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    private sealed class ThreadSeen
    {
        public TaskCompletionSource<string?> Name { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<string?> Starter { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Reset()
        {
            Name = new(TaskCreationOptions.RunContinuationsAsynchronously);
            Starter = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>
    /// Notes, before any await, the thread its start runs on and what <see cref="s_starter"/> holds there; then reads to
    /// the end.
    /// </summary>
    private sealed class StartThreadProtocol(ThreadSeen seen) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            seen.Starter.TrySetResult(s_starter.Value);
            seen.Name.TrySetResult(Thread.CurrentThread.Name);
            while (true)
            {
                ReadResult result = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }

    private sealed class ThreadNameProtocol(ThreadSeen seen) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            while (true)
            {
                // A read that has to wait resumes on whichever thread completed the receive.
                ValueTask<ReadResult> reading = connection.Transport.Input.ReadAsync();
                bool waited = !reading.IsCompleted;
                ReadResult result = await reading;
                if (waited)
                {
                    seen.Name.TrySetResult(Thread.CurrentThread.Name);
                }

                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Reads to the end of input, then answers with the number of bytes it got and closes.</summary>
    private sealed class CountToEndProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            long total = 0;
            while (true)
            {
                ReadResult result = await connection.Transport.Input.ReadAsync();
                total += result.Buffer.Length;
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(total.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    private sealed class StalledWriter
    {
        public TaskCompletionSource<ConnectionContext> Stalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<Exception?> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Writes until a flush has to wait for the transport, reports it, and records how that flush ends.</summary>
    private sealed class FloodProtocol(StalledWriter writer) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            ReadResult start = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(start.Buffer.End);
            var chunk = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    ValueTask<FlushResult> flushing = connection.Transport.Output.WriteAsync(chunk);
                    if (!flushing.IsCompleted)
                    {
                        writer.Stalled.TrySetResult(connection);
                    }

                    FlushResult flushed = await flushing;
                    if (flushed.IsCompleted || flushed.IsCanceled)
                    {
                        writer.Ended.TrySetResult(new OperationCanceledException("The flush ended without an error."));
                        return;
                    }
                }
            }
            catch (Exception ex)
            {
                writer.Ended.TrySetResult(ex);
            }
        }
    }

    /// <summary>Blocks its thread on the first "block" until released, then echoes; echoes anything else at once.</summary>
    private sealed class BlockingGate(int count) : IDisposable
    {
        public ManualResetEventSlim Release { get; } = new();

        public CountdownEvent Blocked { get; } = new(count);

        public void Dispose()
        {
            Release.Dispose();
            Blocked.Dispose();
        }
    }

    private sealed class BlockingEchoProtocol(BlockingGate gate) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            while (true)
            {
                ReadResult result = await connection.Transport.Input.ReadAsync();
                if (result.Buffer.IsEmpty && result.IsCompleted)
                {
                    return;
                }

                byte[] data = System.Buffers.BuffersExtensions.ToArray(result.Buffer);
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (data.AsSpan().SequenceEqual("block"u8))
                {
                    gate.Blocked.Signal();
                    gate.Release.Wait();
                }

                await connection.Transport.Output.WriteAsync(data);
            }
        }
    }
}
