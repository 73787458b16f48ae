using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Memory.Internal;

/// <summary>
/// The two ends of an in-memory connection and the two pumps between them. The pumps play the part of the
/// network: they carry bytes, end of stream and resets, and apply each end's buffer limits.
/// </summary>
internal sealed class MemoryConnectionPair
{
    private static long s_clients;
    private readonly object _lock = new();
    private bool _aborted;

    public MemoryConnectionPair(TransportListenOptions serverLimits, MemoryEndPoint endpoint, ILogger logger)
    {
        Server = new MemoryConnection(this, serverLimits, logger);
        Client = new MemoryConnection(this, new TransportListenOptions(), logger);
        var clientEndPoint = new MemoryEndPoint($"{endpoint.Name}-client-{Interlocked.Increment(ref s_clients)}");
        Server.LocalEndPoint = endpoint;
        Server.RemoteEndPoint = clientEndPoint;
        Client.LocalEndPoint = clientEndPoint;
        Client.RemoteEndPoint = endpoint;
        Server.OutgoingPump = PumpAsync(Server, Client);
        Client.OutgoingPump = PumpAsync(Client, Server);
    }

    public MemoryConnection Server { get; }

    public MemoryConnection Client { get; }

    public void Abort(MemoryConnection origin, ConnectionAbortedException reason)
    {
        lock (_lock)
        {
            if (_aborted)
            {
                return;
            }

            _aborted = true;
            origin.AbortReason = reason;
        }

        Server.OutputPipe.Reader.CancelPendingRead();
        Client.OutputPipe.Reader.CancelPendingRead();
        Server.InputPipe.Writer.CancelPendingFlush();
        Client.InputPipe.Writer.CancelPendingFlush();
    }

    private async Task PumpAsync(MemoryConnection from, MemoryConnection to)
    {
        PipeReader reader = from.OutputPipe.Reader;
        PipeWriter writer = to.InputPipe.Writer;
        bool peerStoppedReading = false;
        try
        {
            while (true)
            {
                ReadResult read = await reader.ReadAsync().ConfigureAwait(false);
                if (read.IsCanceled)
                {
                    break;
                }

                ReadOnlySequence<byte> buffer = read.Buffer;
                if (!peerStoppedReading && !buffer.IsEmpty)
                {
                    foreach (ReadOnlyMemory<byte> segment in buffer)
                    {
                        writer.Write(segment.Span);
                    }

                    from.CountSent(buffer.Length);
                    to.CountReceived(buffer.Length);
                }

                reader.AdvanceTo(buffer.End);
                if (!peerStoppedReading)
                {
                    FlushResult flush = await writer.FlushAsync().ConfigureAwait(false);
                    if (flush.IsCanceled)
                    {
                        break;
                    }

                    peerStoppedReading = flush.IsCompleted;
                }

                if (read.IsCompleted)
                {
                    break;
                }
            }
        }
        finally
        {
            Exception? toError = null;
            Exception? fromError = null;
            lock (_lock)
            {
                if (_aborted)
                {
                    MemoryConnection origin = Server.AbortReason is not null ? Server : Client;
                    (origin == Server ? Client : Server).MarkReset();
                    toError = to == origin ? origin.AbortReason : new ConnectionResetException("The peer aborted the connection.");
                    fromError = from == origin ? origin.AbortReason : new ConnectionResetException("The peer aborted the connection.");
                }
            }

            writer.Complete(toError);
            reader.Complete(fromError);
            to.SignalConnectionClosed();
        }
    }
}
