using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Transport.Internal;

/// <summary>
/// A connection's pipes as a <see cref="Stream"/>, for code that speaks streams: <see cref="System.Net.Security.SslStream"/>
/// over the transport, <c>SocketsHttpHandler</c> over a client connection. Asynchronous only: the pipes have no
/// blocking read, and blocking on an asynchronous one would tie up a thread per call. It owns nothing unless a
/// subclass says so.
/// </summary>
internal class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private readonly PipeReader _input = pipe.Input;
    private readonly PipeWriter _output = pipe.Output;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    // Pooled: SslStream's zero-byte read waits here once per message, and a plain async ValueTask would box each wait.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ReadResult result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> data = result.Buffer;
            int copied = (int)Math.Min(data.Length, buffer.Length);
            if (copied > 0 || buffer.IsEmpty)
            {
                // A zero-byte read (SslStream's and SocketsHttpHandler's wait while idle) returns once data is there
                // and takes none of it, so an idle connection holds no buffer of the caller's.
                data.Slice(0, copied).CopyTo(buffer.Span);
                _input.AdvanceTo(data.GetPosition(copied));
                return copied;
            }

            _input.AdvanceTo(data.End);
            if (result.IsCompleted)
            {
                return 0;
            }

            if (result.IsCanceled)
            {
                throw new OperationCanceledException("The transport's read was cancelled.");
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        FlushResult result = await _output.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new IOException("The connection's output is closed: the peer or the server ended it.");
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
        // Every write is flushed as it is made.
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("A Transport connection is read asynchronously; use ReadAsync.");

    public override void Write(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException("A Transport connection is written asynchronously; use WriteAsync.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
