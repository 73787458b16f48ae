using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Transport.Sockets.Internal.Epoll;

/// <summary>
/// A connected socket served by one <see cref="EpollThread"/>: receives and sends are tried at once with non-blocking
/// calls on the caller's thread, and one that would block waits for the socket's next edge-triggered event, which the
/// I/O thread handles by trying again and, on success, running the awaiting code there. One receive and one send may be
/// outstanding at a time (the connection's two loops). No allocation per operation.
/// </summary>
/// <remarks>
/// Each direction has a readiness state: <c>Ready</c> (an event came, or the last call may have left more: try the
/// call), <c>Empty</c> (the last call found nothing and no event came since) and <c>Waiting</c> (an operation is
/// parked). An operation sets <c>Empty</c> before its call, so an event during the call turns it back to <c>Ready</c>
/// and the operation tries again instead of parking: no event is lost between a call that found nothing and the park.
/// A receive that returns fewer bytes than asked has emptied the socket, so the next wait for data parks without a call;
/// the peer's FIN, which may have come with those bytes, is remembered apart (it has no later event).
/// </remarks>
internal sealed unsafe class EpollSocket : IValueTaskSource<int>
{
    private const int Ready = 0;
    private const int Empty = 1;
    private const int Waiting = 2;

    private const int Pending = -1;
    private const int Failed = -2;

    // The most segments one sendmsg gathers (16 pool blocks: 64 KiB, the receive batch).
    private const int MaxSendSegments = 16;

    private readonly SafeHandle _handle;
    private readonly EpollThread _thread;
    private int _readState;
    private int _writeState;
    private int _aborted;
    // 0: not in the epoll set yet; 1: added (or being added); -1: the add failed (_registrationError).
    private int _registration;
    private SocketError _registrationError;
    // Set once an event said the peer closed or the socket failed: that readiness comes once, with the last data or
    // after it, so a receive that took the data must not forget it.
    private int _readClosed;
    private Memory<byte> _receiveBuffer;
    private SocketError _receiveError;
    private ManualResetValueTaskSourceCore<int> _receive;
    private SendOperation? _send;

    private EpollSocket(SafeHandle handle, EpollThread thread)
    {
        _handle = handle;
        _thread = thread;
    }

    /// <summary>The descriptor of the socket served.</summary>
    public SafeHandle Handle => _handle;

    /// <summary>The I/O thread that serves the socket.</summary>
    public EpollThread Thread => _thread;

    /// <summary>The socket's slot in its thread's table (see <see cref="EpollThread"/>).</summary>
    public ulong Token { get; set; }

    /// <summary>
    /// Serves <paramref name="socket"/> on one of <paramref name="engine"/>'s threads. It joins that thread's epoll set only
    /// when an operation first has to wait: a short connection whose request is there on accept and whose peer's FIN comes
    /// before the drain looks never does, and costs no epoll call at all.
    /// </summary>
    public static EpollSocket Create(SafeHandle socket, EpollEngine engine) => new(socket, engine.NextThread());

    /// <summary>
    /// Receives into <paramref name="buffer"/>: the bytes received, 0 at the peer's FIN. An empty buffer waits until the
    /// socket is readable (data, FIN or an error) without taking any bytes, and completes with 0.
    /// </summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        _receiveBuffer = buffer;
        int result = TryReceive(fromEvent: false);
        if (result == Pending)
        {
            return new ValueTask<int>(this, _receive.Version);
        }

        _receiveBuffer = default;
        return result >= 0 ? new ValueTask<int>(result) : ValueTask.FromException<int>(new SocketException((int)_receiveError));
    }

    /// <summary>
    /// For a listening socket: call before each accept attempt, so that a connection that arrives during the attempt
    /// makes <see cref="WaitReadableAsync"/> return at once instead of waiting for an event that has already come.
    /// </summary>
    public void BeginAttempt() => Interlocked.Exchange(ref _readState, Empty);

    /// <summary>
    /// For a listening socket, after an accept that would have blocked: completes (with 0) once the socket is readable
    /// again, at once if it became readable since <see cref="BeginAttempt"/>, or fails with
    /// <see cref="SocketError.OperationAborted"/> after <see cref="Abort"/>. The wait ends on the I/O thread, which runs the
    /// awaiting code (the accept loop).
    /// </summary>
    public ValueTask<int> WaitReadableAsync()
    {
        _receive.Reset();
        _receiveBuffer = default;
        if (Interlocked.CompareExchange(ref _readState, Waiting, Empty) != Empty)
        {
            // An event came since the attempt began: try again.
            return new ValueTask<int>(0);
        }

        // Abort may have looked before we parked, or the socket could not join the epoll set: then it is ours to end.
        SocketError parkError = Volatile.Read(ref _aborted) != 0 ? SocketError.OperationAborted : EnsureRegistered();
        if (parkError != SocketError.Success && Interlocked.CompareExchange(ref _readState, Ready, Waiting) == Waiting)
        {
            return ValueTask.FromException<int>(new SocketException((int)parkError));
        }

        return new ValueTask<int>(this, _receive.Version);
    }

    /// <summary>Sends the start of <paramref name="buffer"/> (all of it unless it has more than 16 segments); the bytes sent.</summary>
    public ValueTask<int> SendAsync(in ReadOnlySequence<byte> buffer)
    {
        int result = TrySend(buffer, out SocketError error);
        if (result >= 0)
        {
            return new ValueTask<int>(result);
        }

        if (result == Failed)
        {
            return ValueTask.FromException<int>(new SocketException((int)error));
        }

        SendOperation send = _send ??= new SendOperation(this);
        return send.Park(buffer);
    }

    /// <summary>Ends the outstanding operations with <see cref="SocketError.OperationAborted"/>, now and from now on.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _aborted, 1);

        if (Interlocked.CompareExchange(ref _readState, Ready, Waiting) == Waiting)
        {
            CompleteReceive(Failed, SocketError.OperationAborted);
        }

        _send?.Abort();
    }

    /// <summary>Leaves the I/O thread (before the descriptor is closed); call once both loops are done with the socket.</summary>
    public void Unregister()
    {
        if (Volatile.Read(ref _registration) == 1)
        {
            _thread.Unregister(this);
        }

        // Drop the last continuation and buffer, which the I/O thread's table no longer keeps reachable anyway.
        _receive.Reset();
        _receiveBuffer = default;
        _send?.Clear();
    }

    /// <summary>Runs on the I/O thread for each event of this socket.</summary>
    public void OnEvents(uint events)
    {
        if ((events & (EpollNative.EPOLLRDHUP | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
        {
            Volatile.Write(ref _readClosed, 1);
        }

        if ((events & (EpollNative.EPOLLIN | EpollNative.EPOLLRDHUP | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0
            && Interlocked.Exchange(ref _readState, Ready) == Waiting)
        {
            int result = TryReceive(fromEvent: true);
            if (result != Pending)
            {
                CompleteReceive(result, _receiveError);
            }
        }

        if ((events & (EpollNative.EPOLLOUT | EpollNative.EPOLLHUP | EpollNative.EPOLLERR)) != 0)
        {
            if (Interlocked.Exchange(ref _writeState, Ready) == Waiting)
            {
                _send?.OnWritable();
            }
        }
    }

    private void CompleteReceive(int result, SocketError error)
    {
        _receiveBuffer = default;
        Complete(ref _receive, result, error);
    }

    /// <summary>Completes a parked operation (its continuation runs here): with the bytes, or with the error.</summary>
    private static void Complete(ref ManualResetValueTaskSourceCore<int> operation, int result, SocketError error)
    {
        if (result >= 0)
        {
            operation.SetResult(result);
        }
        else
        {
            operation.SetException(new SocketException((int)error));
        }
    }

    /// <summary>One attempt (or a few, when an event comes during the call): a result, <see cref="Failed"/>, or parked.</summary>
    private int TryReceive(bool fromEvent)
    {
        Memory<byte> buffer = _receiveBuffer;
        bool parkedBefore = fromEvent;
        while (true)
        {
            if (Volatile.Read(ref _aborted) != 0)
            {
                _receiveError = SocketError.OperationAborted;
                return Failed;
            }

            int previous = Interlocked.Exchange(ref _readState, Empty);
            SocketError error;
            if (buffer.IsEmpty)
            {
                if (fromEvent || Volatile.Read(ref _readClosed) != 0)
                {
                    // Readable, or hung up: either way the next receive has something to report.
                    MarkReady(ref _readState);
                    return 0;
                }

                if (previous == Ready)
                {
                    // Maybe readable (the last receive filled its buffer, or an event came): look without taking.
                    byte probe;
                    int peeked = Call(&probe, 1, EpollNative.MSG_PEEK, out error);
                    if (peeked >= 0 || error != SocketError.WouldBlock)
                    {
                        MarkReady(ref _readState);
                        return peeked >= 0 ? 0 : Fail(error);
                    }
                }
            }
            else
            {
                int received;
                fixed (byte* pointer = buffer.Span)
                {
                    received = Call(pointer, buffer.Length, 0, out error);
                }

                if (received > 0)
                {
                    if (received == buffer.Length)
                    {
                        // Filled: the kernel may hold more.
                        MarkReady(ref _readState);
                    }

                    return received;
                }

                if (received == 0 || error != SocketError.WouldBlock)
                {
                    // FIN or an error: every later receive will see it too.
                    MarkReady(ref _readState);
                    return received == 0 ? 0 : Fail(error);
                }
            }

            // Nothing there: wait for the next event, unless one came during the call.
            if (!parkedBefore)
            {
                _receive.Reset();
                parkedBefore = true;
            }

            if (Interlocked.CompareExchange(ref _readState, Waiting, Empty) == Empty)
            {
                // Abort may have looked before we parked, or the socket could not join the epoll set: then it is ours to end.
                SocketError parkError = Volatile.Read(ref _aborted) != 0 ? SocketError.OperationAborted : EnsureRegistered();
                if (parkError != SocketError.Success && Interlocked.CompareExchange(ref _readState, Ready, Waiting) == Waiting)
                {
                    _receiveError = parkError;
                    return Failed;
                }

                return Pending;
            }

            fromEvent = false;
        }
    }

    /// <summary>
    /// Adds the socket to its thread's epoll set on the first wait; the add reports what is ready already, so an operation
    /// parked before it completes still gets its event. Success once added (by this call or an earlier one).
    /// </summary>
    private SocketError EnsureRegistered()
    {
        int registration = Volatile.Read(ref _registration);
        if (registration == 0 && Interlocked.CompareExchange(ref _registration, 1, 0) == 0)
        {
            SocketError error = _thread.Register(this);
            if (error == SocketError.Success)
            {
                return SocketError.Success;
            }

            _registrationError = error;
            Volatile.Write(ref _registration, -1);
            // The other direction may have parked meanwhile, counting on this add: end it too.
            if (Interlocked.CompareExchange(ref _readState, Ready, Waiting) == Waiting)
            {
                CompleteReceive(Failed, error);
            }

            _send?.Fail(error);
            return error;
        }

        return Volatile.Read(ref _registration) == -1 ? _registrationError : SocketError.Success;
    }

    private int Fail(SocketError error)
    {
        _receiveError = error;
        return Failed;
    }

    private int Call(byte* buffer, int length, int flags, out SocketError error)
    {
        try
        {
            return EpollNative.Receive(_handle, buffer, length, flags, out error);
        }
        catch (ObjectDisposedException)
        {
            // Closed by Abort while this loop was between calls.
            error = SocketError.OperationAborted;
            return -1;
        }
    }

    private static void MarkReady(ref int state) => Interlocked.CompareExchange(ref state, Ready, Empty);

    /// <summary>A send: the bytes sent (maybe fewer than all), <see cref="Failed"/> with the error, or <see cref="Pending"/> (would block).</summary>
    private int TrySend(in ReadOnlySequence<byte> buffer, out SocketError error)
    {
        while (true)
        {
            if (Volatile.Read(ref _aborted) != 0)
            {
                error = SocketError.OperationAborted;
                return Failed;
            }

            Interlocked.Exchange(ref _writeState, Empty);
            int sent;
            try
            {
                sent = buffer.IsSingleSegment ? SendOne(buffer.First, out error) : SendGather(buffer, out error);
            }
            catch (ObjectDisposedException)
            {
                error = SocketError.OperationAborted;
                return Failed;
            }

            // Only a send that would block reads the state (to park); every send tries the call, so a success or a failure
            // leaves it as it is.
            if (sent >= 0)
            {
                return sent;
            }

            if (error != SocketError.WouldBlock)
            {
                return Failed;
            }

            // The socket's send buffer is full. If an event came during the call, try again; otherwise the caller parks.
            if (Volatile.Read(ref _writeState) == Empty)
            {
                return Pending;
            }
        }
    }

    private int SendOne(ReadOnlyMemory<byte> segment, out SocketError error)
    {
        fixed (byte* pointer = segment.Span)
        {
            return EpollNative.Send(_handle, pointer, segment.Length, out error);
        }
    }

    private int SendGather(in ReadOnlySequence<byte> buffer, out SocketError error)
    {
        EpollNative.IoVec* vectors = stackalloc EpollNative.IoVec[MaxSendSegments];
        PinnedSegments pins = default;
        int count = 0;
        try
        {
            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                if (segment.IsEmpty)
                {
                    continue;
                }

                // Pool blocks are not pinned (see BlockMemoryPool): pinned only for the call.
                pins[count] = segment.Pin();
                vectors[count].Base = (byte*)pins[count].Pointer;
                vectors[count].Length = (nuint)segment.Length;
                if (++count == MaxSendSegments)
                {
                    break;
                }
            }

            return EpollNative.SendGather(_handle, vectors, count, out error);
        }
        finally
        {
            for (int i = 0; i < count; i++)
            {
                pins[i].Dispose();
            }
        }
    }

    int IValueTaskSource<int>.GetResult(short token) => _receive.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _receive.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _receive.OnCompleted(continuation, state, token, flags);

    [InlineArray(MaxSendSegments)]
    private struct PinnedSegments
    {
        private MemoryHandle _element;
    }

    /// <summary>A send that waits for the socket to become writable; made on the first send that has to wait.</summary>
    private sealed class SendOperation(EpollSocket owner) : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _source;
        private ReadOnlySequence<byte> _buffer;

        public ValueTask<int> Park(in ReadOnlySequence<byte> buffer)
        {
            _buffer = buffer;
            _source.Reset();
            while (true)
            {
                if (Interlocked.CompareExchange(ref owner._writeState, Waiting, Empty) == Empty)
                {
                    if (Volatile.Read(ref owner._aborted) != 0)
                    {
                        Abort();
                    }
                    else if (owner.EnsureRegistered() is var registration and not SocketError.Success)
                    {
                        Fail(registration);
                    }

                    return new ValueTask<int>(this, _source.Version);
                }

                // Writable again since the call that would have blocked.
                int result = owner.TrySend(buffer, out SocketError error);
                if (result != Pending)
                {
                    _buffer = default;
                    return result >= 0 ? new ValueTask<int>(result) : ValueTask.FromException<int>(new SocketException((int)error));
                }
            }
        }

        public void OnWritable()
        {
            int result = owner.TrySend(_buffer, out SocketError error);
            if (result == Pending)
            {
                if (Interlocked.CompareExchange(ref owner._writeState, Waiting, Empty) != Empty)
                {
                    // Writable again already: the next event will not come for it, so try once more now.
                    Interlocked.Exchange(ref owner._writeState, Ready);
                    OnWritable();
                }
                else if (Volatile.Read(ref owner._aborted) != 0)
                {
                    // Abort looked while this send was being retried here: ending it is ours.
                    Abort();
                }

                return;
            }

            Complete(result, error);
        }

        public void Abort() => Fail(SocketError.OperationAborted);

        /// <summary>Ends the parked send, if it is still parked, with <paramref name="error"/>.</summary>
        public void Fail(SocketError error)
        {
            if (Interlocked.CompareExchange(ref owner._writeState, Ready, Waiting) == Waiting)
            {
                Complete(Failed, error);
            }
        }

        public void Clear()
        {
            _source.Reset();
            _buffer = default;
        }

        private void Complete(int result, SocketError error)
        {
            _buffer = default;
            EpollSocket.Complete(ref _source, result, error);
        }

        int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

        void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _source.OnCompleted(continuation, state, token, flags);
    }
}
