using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.AspNetCore.Internal;

/// <summary>
/// A client connection as the <see cref="Stream"/> <see cref="SocketsHttpHandler"/> reads and writes. Asynchronous
/// only: the pipes have no blocking read, and blocking on an asynchronous one would tie up a thread per call.
/// </summary>
internal sealed class ConnectionStream : Stream
{
    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly ILogger _logger;
    private int _disposed;

    public ConnectionStream(ConnectionContext connection, ILogger logger)
    {
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _logger = logger;
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ReadResult result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> data = result.Buffer;
            if (buffer.IsEmpty)
            {
                // A zero-byte read waits for data without taking any (SocketsHttpHandler's idle wait): consume
                // nothing, so the next read returns what arrived at once.
                _input.AdvanceTo(data.Start);
                return 0;
            }

            if (!data.IsEmpty)
            {
                int count = (int)Math.Min(data.Length, buffer.Length);
                data.Slice(0, count).CopyTo(buffer.Span);
                _input.AdvanceTo(data.GetPosition(count));
                return count;
            }

            _input.AdvanceTo(data.End);
            if (result.IsCompleted)
            {
                return 0;
            }

            if (result.IsCanceled)
            {
                throw new OperationCanceledException("The read was cancelled.");
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        FlushResult result = await _output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("The connection was closed by the server.");
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async Task FlushAsync(CancellationToken cancellationToken) =>
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);

    public override void Flush()
    {
        // Every write is flushed already.
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("A Transport connection is read asynchronously; use HttpClient's asynchronous methods.");

    public override void Write(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("A Transport connection is written asynchronously; use HttpClient's asynchronous methods.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        if (CompletePipes())
        {
            await DisposeConnectionAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        // SocketsHttpHandler disposes its streams synchronously: the pipes end here, and the connection finishes
        // closing (sending what is buffered, waiting for the peer's end) without blocking this thread.
        if (disposing && CompletePipes())
        {
            _ = DisposeConnectionAsync();
        }

        base.Dispose(disposing);
    }

    private bool CompletePipes()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        _input.Complete();
        _output.Complete();
        return true;
    }

    private async Task DisposeConnectionAsync()
    {
        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            AspNetCoreLog.ClientConnectionDisposeFailed(_logger, _connection.ConnectionId, ex);
        }
    }
}
