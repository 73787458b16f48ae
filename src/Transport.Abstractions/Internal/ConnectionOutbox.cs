using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Transport.Internal;

internal enum EnqueueResult
{
    Queued,
    Full,
    Dropped,
    Disconnected,
    Closed,
}

/// <summary>
/// One connection's outbox: the bytes other code sent to it, and who may write its output right now.
/// </summary>
/// <remarks>
/// <para>
/// The output has one owner at a time: the connection's protocol (between <see cref="AcquireAsync"/> and
/// <see cref="Release"/>, typically a framed protocol around each batch) or the drainer, a thread-pool work item
/// that writes queued messages while the protocol is not writing. Senders never write the output themselves:
/// they copy the message into the outbox under its lock, which takes no longer than the copy, and schedule the
/// drainer when nobody owns the output. An owner that finds messages queued writes them itself
/// (<see cref="WriteQueued"/>) so they go out with its own replies; a protocol that wants the output while the
/// drainer waits on a slow peer's flush gets it handed over as soon as that flush completes.
/// </para>
/// <para>
/// Messages are copied into a pooled buffer (two per connection that receives any, swapped when drained), so a
/// send allocates nothing in steady state and the publisher never waits for a receiver unless the policy says
/// <see cref="SlowConsumerPolicy.Wait"/>. On a datagram connection each message keeps its own datagram: the
/// buffer holds a length before each message and the drainer flushes each one alone.
/// </para>
/// </remarks>
internal sealed class ConnectionOutbox : IThreadPoolWorkItem
{
    private const int MinimumBuffer = 512;

    // A drained buffer larger than this goes back to the pool rather than waiting for the next burst.
    private const int MaxKeptBuffer = 64 * 1024;

    private readonly RegisteredConnection _owner;
    private readonly bool _datagram;
    private byte[]? _pending;
    private byte[]? _spare;
    private int _pendingLength;
    private int _pendingCount;
    private int _maxSize;
    private bool _owned;
    private bool _drainerOwns;
    private bool _scheduled;
    private bool _closed;
    private Queue<TaskCompletionSource>? _ownerWaiters;
    private TaskCompletionSource? _space;
    private TaskCompletionSource? _drainerExited;

    public ConnectionOutbox(RegisteredConnection owner, bool datagram, int maxSize)
    {
        _owner = owner;
        _datagram = datagram;
        _maxSize = maxSize;
    }

    public int PendingBytes => Volatile.Read(ref _pendingLength);

    public int PendingMessages => Volatile.Read(ref _pendingCount);

    public bool IsClosed => Volatile.Read(ref _closed);

    public int MaxSize
    {
        get => Volatile.Read(ref _maxSize);
        set => Volatile.Write(ref _maxSize, value);
    }

    public EnqueueResult TryEnqueue(ReadOnlySpan<byte> message, SlowConsumerPolicy policy)
    {
        EnqueueResult result;
        bool schedule = false;
        TaskCompletionSource? space = null;
        lock (this)
        {
            if (_closed)
            {
                return EnqueueResult.Closed;
            }

            int needed = message.Length + (_datagram ? sizeof(int) : 0);
            if (_pendingLength == 0 || needed <= _maxSize - _pendingLength)
            {
                Append(message, needed);
                if (!_owned && !_scheduled)
                {
                    _scheduled = schedule = true;
                }

                result = EnqueueResult.Queued;
            }
            else if (policy == SlowConsumerPolicy.Wait)
            {
                return EnqueueResult.Full;
            }
            else if (policy == SlowConsumerPolicy.Drop)
            {
                return EnqueueResult.Dropped;
            }
            else
            {
                CloseCore();
                space = _space;
                _space = null;
                result = EnqueueResult.Disconnected;
            }
        }

        space?.TrySetResult();
        if (schedule)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        return result;
    }

    /// <summary>Completes when a message of <paramref name="size"/> bytes would fit, or the outbox closed.</summary>
    public Task WaitForSpaceAsync(int size, CancellationToken cancellationToken)
    {
        Task wait;
        lock (this)
        {
            if (_closed || _pendingLength == 0 || size + (_datagram ? sizeof(int) : 0) <= _maxSize - _pendingLength)
            {
                return Task.CompletedTask;
            }

            _space ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _space.Task;
        }

        return wait.WaitAsync(cancellationToken);
    }

    public ValueTask AcquireAsync()
    {
        Task wait;
        lock (this)
        {
            if (!_owned)
            {
                _owned = true;
                return default;
            }

            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (_ownerWaiters ??= new Queue<TaskCompletionSource>()).Enqueue(waiter);
            wait = waiter.Task;
        }

        return new ValueTask(wait);
    }

    public void Release() => HandOver(fromDrainer: false);

    /// <summary>The owner writes what is queued into <paramref name="output"/>, before its own next bytes; no flush.</summary>
    public void WriteQueued(PipeWriter output)
    {
        // Datagrams: each queued message must stay its own datagram, so the drainer sends them after the owner's flush.
        if (_datagram || Volatile.Read(ref _pendingLength) == 0)
        {
            return;
        }

        byte[] batch;
        int length;
        TaskCompletionSource? space;
        lock (this)
        {
            if (_pendingLength == 0 || _closed)
            {
                return;
            }

            (batch, length, space) = TakePending();
        }

        space?.TrySetResult();
        try
        {
            output.Write(batch.AsSpan(0, length));
        }
        finally
        {
            lock (this)
            {
                KeepOrReturn(batch);
            }
        }
    }

    /// <summary>
    /// Stops taking messages and frees what is queued. When the drainer is writing, its pending flush is canceled
    /// (when <paramref name="cancelFlush"/>) and the task completes once it has let go of the output.
    /// </summary>
    public Task CloseAsync(bool cancelFlush)
    {
        Task? drainer = null;
        TaskCompletionSource? space;
        lock (this)
        {
            CloseCore();
            space = _space;
            _space = null;
            if (_drainerOwns)
            {
                _drainerExited ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                drainer = _drainerExited.Task;
            }
        }

        space?.TrySetResult();
        if (drainer is null)
        {
            return Task.CompletedTask;
        }

        if (cancelFlush)
        {
            _owner.Connection.Transport.Output.CancelPendingFlush();
        }

        return drainer;
    }

    void IThreadPoolWorkItem.Execute()
    {
        lock (this)
        {
            _scheduled = false;
            if (_owned || _closed || _pendingLength == 0)
            {
                return;
            }

            _owned = _drainerOwns = true;
        }

        Drain(null, 0, 0);
    }

    /// <summary>The drainer's loop: owns the output until nothing is queued or the protocol asks for it.</summary>
    private void Drain(byte[]? batch, int length, int offset)
    {
        try
        {
            PipeWriter output = _owner.Connection.Transport.Output;
            while (true)
            {
                if (batch is null || offset == length)
                {
                    if (batch is not null)
                    {
                        lock (this)
                        {
                            KeepOrReturn(batch);
                        }
                    }

                    if (!TakeNextOrLetGo(out batch, out length))
                    {
                        return;
                    }

                    offset = 0;
                }

                if (_datagram)
                {
                    int size = BinaryPrimitives.ReadInt32LittleEndian(batch.AsSpan(offset));
                    output.Write(batch.AsSpan(offset + sizeof(int), size));
                    offset += sizeof(int) + size;
                }
                else
                {
                    output.Write(batch.AsSpan(0, length));
                    offset = length;
                }

                ValueTask<FlushResult> flush = output.FlushAsync();
                if (!flush.IsCompletedSuccessfully)
                {
                    // The peer reads slowly: wait for it off this thread; only this path allocates.
                    _ = DrainAfterFlushAsync(flush, batch, length, offset);
                    return;
                }

                FlushResult result = flush.Result;
                if (result.IsCompleted || result.IsCanceled)
                {
                    Stop(batch);
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            Fail(ex, batch);
        }
    }

    private async Task DrainAfterFlushAsync(ValueTask<FlushResult> flush, byte[] batch, int length, int offset)
    {
        try
        {
            FlushResult result = await flush.ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled)
            {
                Stop(batch);
                return;
            }
        }
        catch (Exception ex)
        {
            Fail(ex, batch);
            return;
        }

        Drain(batch, length, offset);
    }

    private bool TakeNextOrLetGo(out byte[] batch, out int length)
    {
        TaskCompletionSource? space;
        lock (this)
        {
            if (_closed || _pendingLength == 0 || _ownerWaiters is { Count: > 0 })
            {
                batch = null!;
                length = 0;
                space = null;
            }
            else
            {
                (batch, length, space) = TakePending();
            }
        }

        if (batch is null)
        {
            LetGo();
            return false;
        }

        space?.TrySetResult();
        return true;
    }

    /// <summary>The peer cannot take more (output completed) or the flush was canceled at close: stop sending.</summary>
    private void Stop(byte[] batch)
    {
        lock (this)
        {
            CloseCore();
            KeepOrReturn(batch);
        }

        LetGo();
    }

    private void Fail(Exception exception, byte[]? batch)
    {
        _owner.Registry.OnDrainFailed(_owner, exception);
        lock (this)
        {
            CloseCore();
            if (batch is not null)
            {
                KeepOrReturn(batch);
            }
        }

        LetGo();
    }

    private void LetGo() => HandOver(fromDrainer: true);

    /// <summary>The owner (the drainer or the protocol) gives up the output: to a waiting protocol, or to nobody.</summary>
    private void HandOver(bool fromDrainer)
    {
        TaskCompletionSource? next = null;
        TaskCompletionSource? exited = null;
        bool schedule = false;
        lock (this)
        {
            if (fromDrainer)
            {
                _drainerOwns = false;
                exited = _drainerExited;
            }
            else if (!_owned || _drainerOwns)
            {
                throw new InvalidOperationException("ReleaseOutput was called without a matching AcquireOutputAsync.");
            }

            if (_ownerWaiters is { Count: > 0 })
            {
                next = _ownerWaiters.Dequeue();
            }
            else
            {
                _owned = false;

                // A message queued while the output was owned did not schedule the drainer.
                if (_pendingLength > 0 && !_closed && !_scheduled)
                {
                    _scheduled = schedule = true;
                }
            }
        }

        next?.SetResult();
        exited?.TrySetResult();
        if (schedule)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    private void Append(ReadOnlySpan<byte> message, int needed)
    {
        byte[]? buffer = _pending;
        if (buffer is null || buffer.Length - _pendingLength < needed)
        {
            buffer = Grow(buffer, _pendingLength + needed);
        }

        Span<byte> target = buffer.AsSpan(_pendingLength);
        if (_datagram)
        {
            BinaryPrimitives.WriteInt32LittleEndian(target, message.Length);
            target = target[sizeof(int)..];
        }

        message.CopyTo(target);
        Volatile.Write(ref _pendingLength, _pendingLength + needed);
        Volatile.Write(ref _pendingCount, _pendingCount + 1);
    }

    private byte[] Grow(byte[]? current, int required)
    {
        if (current is null && _spare is { } spare && spare.Length >= required)
        {
            _spare = null;
            return _pending = spare;
        }

        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(required, current is null ? MinimumBuffer : current.Length * 2));
        if (current is not null)
        {
            current.AsSpan(0, _pendingLength).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(current);
        }

        return _pending = larger;
    }

    private (byte[] Batch, int Length, TaskCompletionSource? Space) TakePending()
    {
        byte[] batch = _pending!;
        int length = _pendingLength;
        _pending = null;
        Volatile.Write(ref _pendingLength, 0);
        Volatile.Write(ref _pendingCount, 0);
        TaskCompletionSource? space = _space;
        _space = null;
        return (batch, length, space);
    }

    private void KeepOrReturn(byte[] buffer)
    {
        if (_closed || _spare is not null || buffer.Length > MaxKeptBuffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        else
        {
            _spare = buffer;
        }
    }

    private void CloseCore()
    {
        if (_closed)
        {
            return;
        }

        Volatile.Write(ref _closed, true);
        if (_pending is not null)
        {
            ArrayPool<byte>.Shared.Return(_pending);
            _pending = null;
        }

        if (_spare is not null)
        {
            ArrayPool<byte>.Shared.Return(_spare);
            _spare = null;
        }

        Volatile.Write(ref _pendingLength, 0);
        Volatile.Write(ref _pendingCount, 0);
    }
}
