using System.Net.Sockets;

namespace Transport.Udp.Internal;

/// <summary>
/// Linux: replies flushed on the receive loop's thread while it delivers a batch (an inline protocol answering) are
/// copied into slots here and leave in one sendmmsg when the batch is delivered. Only that thread queues or sends;
/// flushes from any other thread, and replies larger than a slot, are sent on their own.
/// </summary>
internal sealed class UdpSendBatch : IDisposable
{
    /// <summary>Largest reply that goes through the batch.</summary>
    public const int SlotSize = 2048;

    private readonly Socket _socket;
    private readonly LinuxDatagramBatch _batch;
    private readonly UdpConnection?[] _owners;
    private readonly int[] _lengths;
    private int _queued;
    private int _start;
    private int _deliveringThread;

    public UdpSendBatch(Socket socket, int capacity)
    {
        _socket = socket;
        _batch = new LinuxDatagramBatch(capacity, SlotSize, managed: true);
        _owners = new UdpConnection?[capacity];
        _lengths = new int[capacity];
    }

    /// <summary>The receive loop starts delivering a batch: flushes on this thread queue here until <see cref="EndDelivery"/>.</summary>
    public void BeginDelivery() => _deliveringThread = Environment.CurrentManagedThreadId;

    /// <summary>Sends what the delivery queued; true when some of it waits for room (see <see cref="DrainAsync"/>).</summary>
    public bool EndDelivery()
    {
        _deliveringThread = 0;
        Flush();
        return _start < _queued;
    }

    /// <summary>The receive loop stopped or started over after a fault: nothing queues, and what was queued is lost, as a datagram may be.</summary>
    public void Stop()
    {
        _deliveringThread = 0;
        Reset();
    }

    /// <summary>
    /// Queues <paramref name="datagram"/> (copied, so the writer's buffer is free when this returns, as after a real
    /// send) if the caller is the delivering receive loop; false when the caller must send it itself.
    /// </summary>
    public bool TryQueue(UdpConnection connection, ReadOnlyMemory<byte> datagram)
    {
        if (_deliveringThread == 0 || _deliveringThread != Environment.CurrentManagedThreadId)
        {
            return false;
        }

        if (datagram.Length > SlotSize)
        {
            // Too large for a slot: send what is queued first, so one peer's replies keep the order it was sent in.
            if (_queued > _start)
            {
                Flush();
            }

            return false;
        }

        if (_queued == _batch.Capacity)
        {
            Flush();
        }

        if (_queued == _batch.Capacity)
        {
            // The kernel's send buffer is full and the batch still holds what it refused: this one waits on its own
            // (UDP keeps no order, and this happens only under send pressure).
            return false;
        }

        int slot = _queued++;
        datagram.Span.CopyTo(_batch.SendSlot(slot));
        _batch.PrepareSend(slot, datagram.Length, connection.Peer!);
        _owners[slot] = connection;
        _lengths[slot] = datagram.Length;
        return true;
    }

    /// <summary>
    /// Sends what <see cref="EndDelivery"/> left because the kernel's send buffer was full, waiting for room. Only the
    /// receive loop calls it, between batches, so nothing queues meanwhile.
    /// </summary>
    public async ValueTask DrainAsync()
    {
        for (; _start < _queued; _start++)
        {
            UdpConnection owner = _owners[_start]!;
            try
            {
                await _socket.SendToAsync(_batch.SlotMemory(_start, _lengths[_start]), SocketFlags.None, owner.Peer!).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                owner.OnBatchedSendFailed(ex);
            }
            catch (ObjectDisposedException)
            {
                break;
            }
        }

        Reset();
    }

    public void Dispose() => _batch.Dispose();

    /// <summary>
    /// Sends the queued replies with sendmmsg, without blocking. A datagram the kernel refuses fails its own session
    /// and the rest still go; if the send buffer is full, what is left stays queued.
    /// </summary>
    private void Flush()
    {
        int thread = _deliveringThread;

        // A failed send ends a session's input, which may run its protocol right here: it must not queue into
        // the batch being sent.
        _deliveringThread = 0;
        while (_start < _queued)
        {
            int sent;
            int error;
            try
            {
                sent = _batch.Send(_socket.SafeHandle, _start, _queued - _start, out error);
            }
            catch (ObjectDisposedException)
            {
                Reset();
                return;
            }

            if (sent > 0)
            {
                _start += sent;
            }
            else if (sent == 0)
            {
                _deliveringThread = thread;
                return;
            }
            else
            {
                UdpConnection owner = _owners[_start]!;
                _start++;
                owner.OnBatchedSendFailed(new SocketException((int)Transport.Internal.LinuxErrno.ToSocketError(error)));
            }
        }

        Reset();
        _deliveringThread = thread;
    }

    private void Reset()
    {
        Array.Clear(_owners, 0, _queued);
        _queued = 0;
        _start = 0;
    }
}
