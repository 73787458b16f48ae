using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace Transport.Udp.Internal;

/// <summary>
/// The protocol's input on a UDP session: a bounded queue of whole datagrams. Each read returns exactly one
/// datagram (or what is left of it); datagrams are never merged. A datagram the protocol examined to the end
/// without consuming is dropped: it cannot grow, so waiting for "more of it" would wait forever.
/// </summary>
internal sealed class DatagramPipeReader : PipeReader, IValueTaskSource<ReadResult>
{
    private readonly object _lock = new();
    private readonly Datagram[] _queue;
    private ManualResetValueTaskSourceCore<ReadResult> _waiter;
    private CancellationTokenRegistration _waiterCancellation;
    private int _head;
    private int _count;
    private Datagram _current;
    private bool _hasCurrent;
    private int _currentOffset;
    private bool _waiting;
    private bool _cancelNextRead;
    private bool _writerCompleted;
    private Exception? _writerError;
    private bool _readerCompleted;
    private long _dropped;

    public DatagramPipeReader(int capacity, bool inlineContinuations)
    {
        _queue = new Datagram[capacity];
        _waiter.RunContinuationsAsynchronously = !inlineContinuations;
    }

    /// <summary>Datagrams dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Whether the protocol has stopped reading.</summary>
    public bool IsReaderCompleted => Volatile.Read(ref _readerCompleted);

    /// <summary>Queues a copy of a received datagram; false (and counted) when the queue is full.</summary>
    public bool TryEnqueue(ReadOnlySpan<byte> datagram)
    {
        ReadResult result;
        lock (_lock)
        {
            if (_readerCompleted || _writerCompleted)
            {
                return true;
            }

            if (_count == _queue.Length)
            {
                _dropped++;
                return false;
            }

            byte[] array = ArrayPool<byte>.Shared.Rent(Math.Max(datagram.Length, 1));
            datagram.CopyTo(array);
            var copy = new Datagram(array, datagram.Length);
            if (!_waiting)
            {
                _queue[(_head + _count) % _queue.Length] = copy;
                _count++;
                return true;
            }

            _waiting = false;
            SetCurrent(copy);
            result = new ReadResult(CurrentBuffer(), isCanceled: false, isCompleted: false);
        }

        CompleteWaiter(result, null);
        return true;
    }

    /// <summary>Ends the input: the protocol reads what is queued, then end of stream (or <paramref name="error"/>).</summary>
    public void CompleteWriter(Exception? error = null)
    {
        lock (_lock)
        {
            if (_writerCompleted)
            {
                return;
            }

            _writerCompleted = true;
            _writerError = error;
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
        }

        CompleteWaiter(new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true), error);
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (TryReadLocked(out ReadResult result))
            {
                return new ValueTask<ReadResult>(result);
            }

            if (_writerError is not null)
            {
                return ValueTask.FromException<ReadResult>(_writerError);
            }

            cancellationToken.ThrowIfCancellationRequested();
            _waiter.Reset();
            _waiting = true;
            if (cancellationToken.CanBeCanceled)
            {
                _waiterCancellation = cancellationToken.UnsafeRegister(static (state, token) =>
                    ((DatagramPipeReader)state!).CancelWaiter(token), this);
            }

            return new ValueTask<ReadResult>(this, _waiter.Version);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (_lock)
        {
            if (_writerError is not null && !_hasCurrent && _count == 0)
            {
                throw _writerError;
            }

            return TryReadLocked(out result);
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (_lock)
        {
            if (!_hasCurrent)
            {
                return;
            }

            int end = _current.Length;
            int consumedIndex = consumed.GetObject() is null ? _currentOffset : consumed.GetInteger();
            int examinedIndex = examined.GetObject() is null ? consumedIndex : examined.GetInteger();
            if (consumedIndex >= end || examinedIndex >= end)
            {
                ReleaseCurrent();
            }
            else
            {
                _currentOffset = Math.Max(_currentOffset, consumedIndex);
            }
        }
    }

    public override void CancelPendingRead()
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                _cancelNextRead = true;
                return;
            }

            _waiting = false;
        }

        CompleteWaiter(new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: true, isCompleted: false), null);
    }

    public override void Complete(Exception? exception = null)
    {
        lock (_lock)
        {
            _readerCompleted = true;
            if (_hasCurrent)
            {
                ReleaseCurrent();
            }

            while (_count > 0)
            {
                ArrayPool<byte>.Shared.Return(_queue[_head].Array);
                _queue[_head] = default;
                _head = (_head + 1) % _queue.Length;
                _count--;
            }
        }
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _waiter.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _waiter.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _waiter.OnCompleted(continuation, state, token, flags);

    private bool TryReadLocked(out ReadResult result)
    {
        if (_readerCompleted)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }

        if (_cancelNextRead)
        {
            _cancelNextRead = false;
            result = new ReadResult(_hasCurrent ? CurrentBuffer() : ReadOnlySequence<byte>.Empty, isCanceled: true, isCompleted: false);
            return true;
        }

        if (!_hasCurrent && _count > 0)
        {
            SetCurrent(_queue[_head]);
            _queue[_head] = default;
            _head = (_head + 1) % _queue.Length;
            _count--;
        }

        if (_hasCurrent)
        {
            result = new ReadResult(CurrentBuffer(), isCanceled: false, isCompleted: false);
            return true;
        }

        if (_writerCompleted && _writerError is null)
        {
            result = new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
            return true;
        }

        result = default;
        return false;
    }

    private void SetCurrent(Datagram datagram)
    {
        _current = datagram;
        _hasCurrent = true;
        _currentOffset = 0;
    }

    private ReadOnlySequence<byte> CurrentBuffer() =>
        new(_current.Array, _currentOffset, _current.Length - _currentOffset);

    private void ReleaseCurrent()
    {
        ArrayPool<byte>.Shared.Return(_current.Array);
        _current = default;
        _hasCurrent = false;
        _currentOffset = 0;
    }

    private void CancelWaiter(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
        }

        _waiter.SetException(new OperationCanceledException(token));
    }

    private void CompleteWaiter(ReadResult result, Exception? error)
    {
        _waiterCancellation.Dispose();
        _waiterCancellation = default;
        if (error is null)
        {
            _waiter.SetResult(result);
        }
        else
        {
            _waiter.SetException(error);
        }
    }

    private readonly record struct Datagram(byte[] Array, int Length);
}
