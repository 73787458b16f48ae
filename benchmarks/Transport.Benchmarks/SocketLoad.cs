using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace Transport.Benchmarks;

/// <summary>
/// The load generator: client connections on bare sockets that check every echoed byte. After start-up it
/// allocates nothing: buffers are preallocated, the socket <c>ValueTask</c> APIs reuse their event args, each
/// loop is one long-running async method (one state machine box), and waits use a reusable
/// <see cref="IValueTaskSource"/>. So the process's allocations during the measurement are the server's.
/// </summary>
internal static class SocketLoad
{
    public const int WriteSize = 4 * 1024;

    // Every connection sends the same pseudo-random bytes from its own starting point. The period is prime, so it
    // is no multiple of any write or message size: a lost, repeated or reordered chunk shows up as a mismatch.
    private const int Period = 65521;
    private const int StreamReceiveBufferSize = 64 * 1024;
    private const int SeedStride = 7919;
    private static readonly TimeSpan s_finishTimeout = TimeSpan.FromSeconds(10);

    // Period bytes, then the first 64 KiB again, so any slice of up to 64 KiB from any offset below Period is contiguous.
    private static readonly byte[] s_pattern = CreatePattern();

    public static async Task<RunResult> RunAsync(string server, EndPoint endPoint, LoadMode mode, BenchmarkSettings settings)
    {
        int count = settings.ConnectionsFor(mode);
        var control = new LoadControl(settings.MessageSize, settings.Window);
        var clients = new ClientConnection[count];
        try
        {
            int receiveBufferSize = mode == LoadMode.PingPong ? settings.MessageSize : StreamReceiveBufferSize;
            for (int i = 0; i < count; i++)
            {
                clients[i] = await ClientConnection.ConnectAsync(endPoint, i, (int)((long)i * SeedStride % Period), receiveBufferSize);
            }

            var loops = new Task[count];
            for (int i = 0; i < count; i++)
            {
                loops[i] = mode == LoadMode.PingPong
                    ? PingPongAsync(clients[i], control)
                    : Task.WhenAll(StreamSendAsync(clients[i], control), StreamReceiveAsync(clients[i]));
            }

            await Task.Delay(TimeSpan.FromSeconds(settings.WarmupSeconds));
            Snapshot before = Snapshot.Take(clients);
            await Task.Delay(TimeSpan.FromSeconds(settings.MeasureSeconds));
            Snapshot after = Snapshot.Take(clients);

            control.Stopping = true;
            await FinishAsync(clients, loops);

            int errors = clients.Count(c => c.Error is not null);
            return new RunResult(
                server,
                mode,
                count,
                Seconds: Stopwatch.GetElapsedTime(before.Timestamp, after.Timestamp).TotalSeconds,
                Messages: after.Messages - before.Messages,
                EchoedBytes: after.EchoedBytes - before.EchoedBytes,
                AllocatedBytes: after.AllocatedBytes - before.AllocatedBytes,
                Gen0Collections: after.Gen0Collections - before.Gen0Collections,
                Errors: errors,
                Mismatches: clients.Sum(c => Interlocked.Read(ref c.Mismatches)),
                FirstError: clients.Select(c => c.Error).FirstOrDefault(e => e is not null));
        }
        finally
        {
            foreach (ClientConnection? client in clients)
            {
                client?.Dispose();
            }
        }
    }

    /// <summary>Lets every connection finish its message, close its side and read the server's close.</summary>
    private static async Task FinishAsync(ClientConnection[] clients, Task[] loops)
    {
        Task all = Task.WhenAll(loops);
        try
        {
            await all.WaitAsync(s_finishTimeout);
        }
        catch (TimeoutException)
        {
            for (int i = 0; i < loops.Length; i++)
            {
                if (!loops[i].IsCompleted)
                {
                    clients[i].Fail($"did not finish within {s_finishTimeout.TotalSeconds} s after the load stopped (no echo, or no close)");
                    clients[i].Dispose();
                }
            }

            await all;
        }
    }

    /// <summary>One message in flight: send it, read until all of it came back, compare, repeat.</summary>
    private static async Task PingPongAsync(ClientConnection client, LoadControl control)
    {
        Socket socket = client.Socket;
        byte[] pattern = s_pattern;
        byte[] received = client.ReceiveBuffer;
        int size = control.MessageSize;
        int offset = client.Seed;
        long messages = 0;
        try
        {
            while (!control.Stopping)
            {
                ReadOnlyMemory<byte> message = pattern.AsMemory(offset, size);
                int sent = 0;
                while (sent < size)
                {
                    sent += await socket.SendAsync(message[sent..], SocketFlags.None);
                }

                int got = 0;
                while (got < size)
                {
                    int n = await socket.ReceiveAsync(received.AsMemory(got, size - got), SocketFlags.None);
                    if (n == 0)
                    {
                        client.Fail($"connection {client.Index}: the server closed the connection in the middle of message {messages}");
                        return;
                    }

                    got += n;
                }

                if (!received.AsSpan(0, size).SequenceEqual(message.Span))
                {
                    client.RecordMismatch(messages * size, message.Span, received.AsSpan(0, size));
                    return;
                }

                messages++;
                Volatile.Write(ref client.Messages, messages);
                offset = (int)((offset + (long)size) % Period);
            }

            client.SendDone = true;
            socket.Shutdown(SocketShutdown.Send);
            int extra = await socket.ReceiveAsync(received.AsMemory(), SocketFlags.None);
            if (extra != 0)
            {
                Interlocked.Increment(ref client.Mismatches);
                client.Fail($"connection {client.Index}: {extra} byte(s) echoed that were never sent");
            }
        }
        catch (Exception ex)
        {
            client.Fail($"connection {client.Index}: {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>Stream, sending half: 4 KiB writes while fewer than the window's bytes are unechoed.</summary>
    private static async Task StreamSendAsync(ClientConnection client, LoadControl control)
    {
        Socket socket = client.Socket;
        byte[] pattern = s_pattern;
        SendGate gate = client.Gate;
        long window = control.Window;
        long sent = 0;
        long writes = 0;
        try
        {
            while (!control.Stopping && !client.Failed)
            {
                if (sent - Volatile.Read(ref client.Received) + WriteSize > window)
                {
                    gate.Arm();
                    // Check again after arming: the receiver may have made room (or failed) just before.
                    if ((sent - Volatile.Read(ref client.Received) + WriteSize <= window || client.Failed) && gate.TryDisarm())
                    {
                        continue;
                    }

                    await gate.WaitAsync();
                    continue;
                }

                ReadOnlyMemory<byte> chunk = pattern.AsMemory((int)((client.Seed + sent) % Period), WriteSize);
                int done = 0;
                while (done < WriteSize)
                {
                    done += await socket.SendAsync(chunk[done..], SocketFlags.None);
                }

                sent += WriteSize;
                writes++;
                Volatile.Write(ref client.Sent, sent);
                Volatile.Write(ref client.Messages, writes);
            }

            client.SendDone = true;
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex)
        {
            client.Fail($"connection {client.Index}: sending: {ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>Stream, receiving half: checks every echoed byte, then makes room in the window.</summary>
    private static async Task StreamReceiveAsync(ClientConnection client)
    {
        Socket socket = client.Socket;
        byte[] pattern = s_pattern;
        byte[] buffer = client.ReceiveBuffer;
        long received = 0;
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                ReadOnlySpan<byte> expected = pattern.AsSpan((int)((client.Seed + received) % Period), n);
                if (!buffer.AsSpan(0, n).SequenceEqual(expected))
                {
                    client.RecordMismatch(received, expected, buffer.AsSpan(0, n));
                    return;
                }

                received += n;
                Volatile.Write(ref client.Received, received);
                client.Gate.Release();
            }

            long sent = Volatile.Read(ref client.Sent);
            if (!client.SendDone)
            {
                client.Fail($"connection {client.Index}: the server closed the connection while the load was running");
            }
            else if (received != sent)
            {
                client.Fail($"connection {client.Index}: short echo: {sent - received} of {sent} bytes never came back");
            }
        }
        catch (Exception ex)
        {
            client.Fail($"connection {client.Index}: receiving: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            // The sender may be waiting for room that will never come now.
            client.Gate.Release();
        }
    }

    private static byte[] CreatePattern()
    {
        byte[] pattern = new byte[Period + BenchmarkSettings.MaxMessageSize];
        new Random(0x5EED).NextBytes(pattern.AsSpan(0, Period));
        for (int i = Period; i < pattern.Length; i++)
        {
            // Byte by byte: the tail is longer than the period, so it repeats bytes it has just written.
            pattern[i] = pattern[i - Period];
        }
        return pattern;
    }

    private readonly record struct Snapshot(long Timestamp, long Messages, long EchoedBytes, long AllocatedBytes, int Gen0Collections)
    {
        public static Snapshot Take(ClientConnection[] clients)
        {
            long messages = 0;
            long echoed = 0;
            foreach (ClientConnection client in clients)
            {
                messages += Volatile.Read(ref client.Messages);
                echoed += Volatile.Read(ref client.Received);
            }

            return new Snapshot(Stopwatch.GetTimestamp(), messages, echoed, GC.GetTotalAllocatedBytes(precise: true), GC.CollectionCount(0));
        }
    }
}

internal sealed class LoadControl(int messageSize, int window)
{
    private volatile bool _stopping;

    public int MessageSize { get; } = messageSize;

    public int Window { get; } = window;

    public bool Stopping
    {
        get => _stopping;
        set => _stopping = value;
    }
}

/// <summary>One client connection: its socket, buffers and counters (each written by one loop, read by the runner).</summary>
internal sealed class ClientConnection : IDisposable
{
    public long Messages;
    public long Sent;
    public long Received;
    public long Mismatches;

    private volatile bool _sendDone;
    private volatile bool _failed;
    private string? _error;

    private ClientConnection(Socket socket, int index, int seed, int receiveBufferSize)
    {
        Socket = socket;
        Index = index;
        Seed = seed;
        ReceiveBuffer = new byte[receiveBufferSize];
    }

    public Socket Socket { get; }

    public int Index { get; }

    public int Seed { get; }

    public byte[] ReceiveBuffer { get; }

    public SendGate Gate { get; } = new();

    public bool SendDone
    {
        get => _sendDone;
        set => _sendDone = value;
    }

    public bool Failed => _failed;

    public string? Error => Volatile.Read(ref _error);

    public static async Task<ClientConnection> ConnectAsync(EndPoint endPoint, int index, int seed, int receiveBufferSize)
    {
        Socket socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint);
            if (socket.ProtocolType == ProtocolType.Tcp)
            {
                socket.NoDelay = true;
            }

            return new ClientConnection(socket, index, seed, receiveBufferSize);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Keeps the first error; later ones are consequences.</summary>
    public void Fail(string error)
    {
        Interlocked.CompareExchange(ref _error, error, null);
        _failed = true;
    }

    public void RecordMismatch(long streamOffset, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        int at = expected.CommonPrefixLength(actual);
        Interlocked.Increment(ref Mismatches);
        Fail($"connection {Index}: echoed byte {streamOffset + at} is 0x{actual[at]:X2}, expected 0x{expected[at]:X2}");
    }

    public void Dispose() => Socket.Dispose();
}

/// <summary>
/// Parks the stream sender while its window is full, without allocating: one reusable
/// <see cref="IValueTaskSource"/>. The sender arms it, checks its condition again, and waits; the receiver
/// releases it after each read. Whoever swaps the armed flag back to 0 owns the wake-up.
/// </summary>
internal sealed class SendGate : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private int _armed;

    public void Arm()
    {
        _core.Reset();
        Interlocked.Exchange(ref _armed, 1);
    }

    /// <summary>Takes the wait back; false when a release already claimed it (then wait: it completes at once).</summary>
    public bool TryDisarm() => Interlocked.Exchange(ref _armed, 0) == 1;

    public ValueTask WaitAsync() => new(this, _core.Version);

    public void Release()
    {
        if (Interlocked.Exchange(ref _armed, 0) == 1)
        {
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}

internal sealed record RunResult(
    string Server,
    LoadMode Mode,
    int Connections,
    double Seconds,
    long Messages,
    long EchoedBytes,
    long AllocatedBytes,
    int Gen0Collections,
    int Errors,
    long Mismatches,
    string? FirstError)
{
    /// <summary>Round trips/s for pingpong, echoed MiB/s for stream.</summary>
    public double Rate => Seconds <= 0 ? double.NaN
        : Mode == LoadMode.Stream ? EchoedBytes / Seconds / (1024 * 1024) : Messages / Seconds;

    /// <summary>Allocated bytes per round trip (pingpong) or per 4 KiB write (stream).</summary>
    public double AllocatedPerMessage => Messages <= 0 ? double.NaN : (double)AllocatedBytes / Messages;

    public static RunResult Failed(string server, LoadMode mode, int connections, string error) =>
        new(server, mode, connections, 0, 0, 0, 0, 0, Errors: 1, Mismatches: 0, FirstError: error);
}
