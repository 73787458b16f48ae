using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;

namespace Transport.Udp.Internal;

/// <summary>
/// The protocol's output on a UDP session: bytes written between two flushes form one datagram, sent whole at
/// the flush (an empty flush sends an empty datagram). Writing more than the largest datagram throws at once,
/// so nothing is ever split or cut short.
/// </summary>
internal sealed class DatagramPipeWriter : PipeWriter
{
    private const int InitialBufferSize = 2048;

    private readonly UdpConnection _connection;
    private readonly int _maxDatagramSize;
    private byte[]? _buffer;
    private int _written;
    private bool _completed;
    private bool _cancelNextFlush;

    public DatagramPipeWriter(UdpConnection connection, int maxDatagramSize)
    {
        _connection = connection;
        _maxDatagramSize = maxDatagramSize;
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(_written, Math.Min(_buffer!.Length, _maxDatagramSize) - _written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written, Math.Min(_buffer!.Length, _maxDatagramSize) - _written);
    }

    public override void Advance(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (_buffer is null || _written + bytes > _buffer.Length)
        {
            throw new InvalidOperationException("Cannot advance past the end of the buffer obtained from GetMemory/GetSpan.");
        }

        _written += bytes;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (_cancelNextFlush)
        {
            _cancelNextFlush = false;
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
        }

        byte[]? buffer = _buffer;
        int length = _written;
        _buffer = null;
        _written = 0;
        ValueTask sending = _connection.SendDatagramAsync(buffer is null ? ReadOnlyMemory<byte>.Empty : buffer.AsMemory(0, length), cancellationToken);
        if (sending.IsCompletedSuccessfully)
        {
            Return(buffer);
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: _connection.IsOutputClosed));
        }

        return AwaitSend(sending, buffer);
    }

    public override void CancelPendingFlush() => _cancelNextFlush = true;

    public override void Complete(Exception? exception = null)
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        Return(_buffer);
        _buffer = null;
        _written = 0;
    }

    private async ValueTask<FlushResult> AwaitSend(ValueTask sending, byte[]? buffer)
    {
        try
        {
            await sending.ConfigureAwait(false);
        }
        finally
        {
            Return(buffer);
        }

        return new FlushResult(isCanceled: false, isCompleted: _connection.IsOutputClosed);
    }

    private void EnsureCapacity(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(sizeHint);
        int needed = _written + Math.Max(sizeHint, 1);
        if (needed > _maxDatagramSize)
        {
            // Nothing of an oversize datagram is ever sent: what was written of it is discarded here.
            int written = _written;
            _written = 0;
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"This datagram would exceed the largest datagram size of {_maxDatagramSize} bytes ({written} bytes written, {Math.Max(sizeHint, 1)} more asked for); it was discarded. On a UDP connection each flush sends exactly one datagram: flush before writing more."));
        }

        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }

        int size = Math.Min(_maxDatagramSize, Math.Max(needed, Math.Max(InitialBufferSize, (_buffer?.Length ?? 0) * 2)));
        byte[] grown = ArrayPool<byte>.Shared.Rent(size);
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = grown;
    }

    private static void Return(byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
