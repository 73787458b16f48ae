using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Transport.Benchmarks;

/// <summary>
/// UDP echo load: connected sockets, each keeping <see cref="Window"/> datagrams of <see cref="DatagramSize"/> bytes
/// in flight. Every datagram carries (socket id, sequence) and a pattern; every answer is checked. A socket whose
/// answers stop for 250 ms counts its window as lost and sends a fresh one. The client allocates nothing per datagram.
/// </summary>
internal static class UdpLoad
{
    public const int DatagramSize = 64;
    public const int Window = 16;
    private static readonly TimeSpan s_lossTimeout = TimeSpan.FromMilliseconds(250);

    public static async Task<RunResult> RunAsync(string server, EndPoint endPoint, BenchmarkSettings settings)
    {
        int count = settings.ConnectionsFor(LoadMode.Udp);
        var peers = new UdpPeer[count];
        for (int i = 0; i < count; i++)
        {
            peers[i] = await UdpPeer.ConnectAsync(endPoint, i);
        }

        using var stop = new CancellationTokenSource();
        Task[] loops = [.. peers.Select(p => p.RunAsync(stop.Token))];
        Task watchdog = WatchAsync(peers, stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(settings.WarmupSeconds));
        (long start, long answered0, long lost0, long alloc0, int gen0) = Take(peers);
        await Task.Delay(TimeSpan.FromSeconds(settings.MeasureSeconds));
        (long end, long answered1, long lost1, long alloc1, int gen1) = Take(peers);
        await stop.CancelAsync();
        foreach (UdpPeer peer in peers)
        {
            peer.Dispose();
        }

        await Task.WhenAll([.. loops, watchdog]).WaitAsync(TimeSpan.FromSeconds(10));
        long mismatches = peers.Sum(p => p.Mismatches);
        string? error = mismatches > 0 ? $"{mismatches} wrong datagram(s)" : lost1 - lost0 > 0 ? $"{lost1 - lost0} datagram(s) lost in the measured window" : null;
        return new RunResult(server, LoadMode.Udp, count,
            Seconds: Stopwatch.GetElapsedTime(start, end).TotalSeconds,
            Messages: answered1 - answered0,
            EchoedBytes: (answered1 - answered0) * DatagramSize,
            AllocatedBytes: alloc1 - alloc0,
            Gen0Collections: gen1 - gen0,
            Errors: 0,
            Mismatches: mismatches,
            FirstError: error);
    }

    private static (long Timestamp, long Answered, long Lost, long Allocated, int Gen0) Take(UdpPeer[] peers) =>
        (Stopwatch.GetTimestamp(), peers.Sum(p => Volatile.Read(ref p.Answered)), peers.Sum(p => Volatile.Read(ref p.Lost)),
            GC.GetTotalAllocatedBytes(precise: true), GC.CollectionCount(0));

    private static async Task WatchAsync(UdpPeer[] peers, CancellationToken stop)
    {
        var seen = new long[peers.Length];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(s_lossTimeout, stop);
                for (int i = 0; i < peers.Length; i++)
                {
                    long answered = Volatile.Read(ref peers[i].Answered);
                    if (answered == seen[i])
                    {
                        await peers[i].RefillAsync();
                    }

                    seen[i] = answered;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class UdpPeer : IDisposable
    {
        private readonly Socket _socket;
        private readonly int _id;
        private readonly byte[] _send = new byte[DatagramSize];
        private readonly byte[] _refill = new byte[DatagramSize];
        private readonly byte[] _receive = new byte[2048];
        private long _sequence;
        public long Answered;
        public long Lost;
        public long Mismatches;

        private UdpPeer(Socket socket, int id)
        {
            _socket = socket;
            _id = id;
        }

        public static async Task<UdpPeer> ConnectAsync(EndPoint endPoint, int id)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            await socket.ConnectAsync(endPoint);
            return new UdpPeer(socket, id);
        }

        public async Task RunAsync(CancellationToken stop)
        {
            try
            {
                for (int i = 0; i < Window; i++)
                {
                    await SendNextAsync(_send);
                }

                while (!stop.IsCancellationRequested)
                {
                    int received = await _socket.ReceiveAsync(_receive.AsMemory(), SocketFlags.None, CancellationToken.None);
                    if (received != DatagramSize || !Check(_receive))
                    {
                        Interlocked.Increment(ref Mismatches);
                    }

                    Interlocked.Increment(ref Answered);
                    await SendNextAsync(_send);
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException or OperationCanceledException)
            {
                // Stopped.
            }
        }

        /// <summary>Answers stopped: the window was lost; send a fresh one.</summary>
        public async Task RefillAsync()
        {
            Interlocked.Add(ref Lost, Window);
            try
            {
                for (int i = 0; i < Window; i++)
                {
                    await SendNextAsync(_refill);
                }
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
            }
        }

        public void Dispose() => _socket.Dispose();

        private async ValueTask SendNextAsync(byte[] buffer)
        {
            long sequence = Interlocked.Increment(ref _sequence);
            Fill(buffer, _id, sequence);
            await _socket.SendAsync(buffer.AsMemory(), SocketFlags.None);
        }

        private bool Check(byte[] datagram)
        {
            if (BinaryPrimitives.ReadInt32LittleEndian(datagram) != _id)
            {
                return false;
            }

            long sequence = BinaryPrimitives.ReadInt64LittleEndian(datagram.AsSpan(4));
            for (int i = 12; i < DatagramSize; i++)
            {
                if (datagram[i] != (byte)(sequence + i))
                {
                    return false;
                }
            }

            return true;
        }

        private static void Fill(byte[] buffer, int id, long sequence)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer, id);
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(4), sequence);
            for (int i = 12; i < DatagramSize; i++)
            {
                buffer[i] = (byte)(sequence + i);
            }
        }
    }
}

/// <summary>The UDP echo a .NET user writes first: one ReceiveFromAsync/SendToAsync loop on a plain socket.</summary>
internal sealed class NaiveUdpEchoServer : IEchoServer
{
    private readonly Socket _socket;
    private readonly Task _loop;

    private NaiveUdpEchoServer(Socket socket)
    {
        _socket = socket;
        EndPoint = socket.LocalEndPoint!;
        _loop = EchoAsync();
    }

    public EndPoint EndPoint { get; }

    public static NaiveUdpEchoServer Start()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new NaiveUdpEchoServer(socket);
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _loop;
    }

    private async Task EchoAsync()
    {
        var buffer = new byte[65536];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        try
        {
            while (true)
            {
                SocketReceiveFromResult result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any);
                await _socket.SendToAsync(buffer.AsMemory(0, result.ReceivedBytes), SocketFlags.None, result.RemoteEndPoint);
            }
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
        }
    }
}
