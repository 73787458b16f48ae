using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Transport.Sockets.Internal.Epoll;

namespace Transport.Sockets.Internal;

/// <summary>
/// One socket as a <see cref="ConnectionContext"/>: a receive loop fills the input pipe, a send loop drains
/// the output pipe. Both run until the peer or the protocol is done, then the socket is closed.
/// </summary>
internal sealed class SocketConnection : TransportConnection, IConnectionSocketFeature, IMemoryPoolFeature, IDuplexPipe, IDrainWaiter,
    Transport.Internal.IInlineStartConnection
{
    // Half a pool block: a receive into less than this takes a fresh block instead (as Kestrel does).
    private const int MinimumReceiveSegment = BlockMemoryPool.BlockSize / 2;

    private static readonly Type[] s_transportFeatureTypes = [typeof(IConnectionSocketFeature), typeof(IMemoryPoolFeature)];

    // The descriptor, always; .NET's Socket over it only when the accept made one or someone asks for it (see Socket):
    // a connection accepted on an I/O thread has none, which saves the eight calls and four objects its constructor costs.
    private readonly SafeHandle _handle;
    private Socket? _socket;
    private readonly SocketConnectionSettings _settings;
    private readonly ILogger _logger;
    private readonly Pipe _input;
    private readonly Pipe _output;
    // One of the two: the transport's own I/O thread serves the socket, or .NET's socket engine does.
    private EpollSocket? _epoll;
    private SocketAwaitableEventArgs? _receiveArgs;
    private ConnectionAbortedException? _abortReason;
    private Task _processing = Task.CompletedTask;
    private long _drainDeadline;
    private int _drained;

    public SocketConnection(Socket socket, SocketConnectionSettings settings)
        : this(socket.SafeHandle, socket.LocalEndPoint, socket.RemoteEndPoint, settings)
    {
        _socket = socket;
    }

    /// <summary>A connection over a bare descriptor (accepted on an I/O thread), with the addresses the accept found.</summary>
    public SocketConnection(SafeHandle handle, EndPoint? localEndPoint, EndPoint? remoteEndPoint, SocketConnectionSettings settings)
        : base(settings.Logger)
    {
        _handle = handle;
        _settings = settings;
        _logger = settings.Logger;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _input = new Pipe(settings.InputOptions);
        _output = new Pipe(settings.OutputOptions);
        Transport = this;
    }

    PipeReader IDuplexPipe.Input => _input.Reader;

    PipeWriter IDuplexPipe.Output => _output.Writer;

    bool Transport.Internal.IInlineStartConnection.TryStartInline(Action<object?> start, object? state)
    {
        if (!_settings.StartInline || _epoll is not { } epoll)
        {
            return false;
        }

        epoll.Thread.Run(start, state);
        return true;
    }

    long IDrainWaiter.DrainDeadline => Volatile.Read(ref _drainDeadline);

    bool IDrainWaiter.IsDrained => Volatile.Read(ref _drained) != 0;

    void IDrainWaiter.OnDrainDeadline() => Abort(new ConnectionAbortedException("The peer did not close within the drain timeout."));

    /// <summary>
    /// The socket, as Kestrel's socket transport offers it (e.g. to read or set a socket option). Made on first use for
    /// a connection accepted on an I/O thread; <see cref="ObjectDisposedException"/> once the connection closed it.
    /// </summary>
    public Socket Socket => Volatile.Read(ref _socket) ?? CreateSocket();

    private Socket CreateSocket()
    {
        lock (_handle)
        {
            if (_socket is null)
            {
                ObjectDisposedException.ThrowIf(_handle.IsClosed, typeof(Socket));
                // Over our descriptor without owning it: the connection closes it, gracefully unless aborted.
                _socket = new Socket(new SafeSocketHandle(_handle.DangerousGetHandle(), ownsHandle: false));
            }

            return _socket;
        }
    }

    /// <summary>Closes the descriptor, through the socket if one was made (idempotent).</summary>
    private void CloseSocket()
    {
        lock (_handle)
        {
            _socket?.Dispose();
            if (_handle is not SafeSocketHandle)
            {
                // Ours (accepted on an I/O thread); a Socket's own handle went with the Socket.
                _handle.Dispose();
            }
        }
    }

    private int Available() => Volatile.Read(ref _socket) is { } socket ? socket.Available : EpollNative.Available(_handle);

    /// <summary>The transport's block pool, so a layer above (TLS's decrypted pipes) buffers in it too, as Kestrel offers its pool.</summary>
    public MemoryPool<byte> MemoryPool => _settings.MemoryPool;

    protected override object? GetTransportFeature(Type featureType) =>
        featureType == typeof(IConnectionSocketFeature) || featureType == typeof(IMemoryPoolFeature) ? this : null;

    protected override ReadOnlySpan<Type> TransportFeatureTypes => s_transportFeatureTypes;

    public void Start()
    {
        if (_settings.Engine is { } engine)
        {
            _epoll = EpollSocket.Create(_handle, engine);
        }
        else
        {
            _receiveArgs = new SocketAwaitableEventArgs();
        }

        _processing = ReceiveLoopAsync(SendLoopAsync());
    }

    private ValueTask<int> ReceiveAsync(Memory<byte> buffer) =>
        _epoll is { } epoll ? epoll.ReceiveAsync(buffer) : _receiveArgs!.ReceiveAsync(Socket, buffer);

    public override void Abort(ConnectionAbortedException? abortReason)
    {
        abortReason = AbortReasonOrDefault(abortReason);
        if (Interlocked.CompareExchange(ref _abortReason, abortReason, null) is not null)
        {
            return;
        }

        MarkAborted();

        SocketsLog.ConnectionAborted(_logger, ConnectionId, abortReason.Message);

        // An abort resets the connection: what is still unsent is dropped and the peer gets an RST at once, whatever the
        // loops are doing (.NET's engine resets only when it had to cancel an operation and no shutdown came first; a
        // plain close would leave the kernel sending the rest for as long as a slow peer takes to read it). Set first:
        // ending the loops below may close the socket before they return.
        try
        {
            if (Volatile.Read(ref _socket) is { } socket)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            else
            {
                EpollNative.SetAbortiveClose(_handle);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed, or reset by the peer.
        }

        _output.Reader.CancelPendingRead();
        // Closing the descriptor ends .NET's pending operations; ours are parked on an epoll set that closing leaves.
        _epoll?.Abort();
        CloseSocket();
    }

    protected override async ValueTask CloseTransportAsync()
    {
        // The protocol is done with both directions; the loops finish what is buffered and close.
        _input.Reader.Complete();
        _output.Writer.Complete();
        if (!_processing.IsCompleted)
        {
            // Waiting for the peer's FIN: one shared sweep aborts us if it does not come in time (no timer per socket).
            DrainDeadlines deadlines = _settings.DrainDeadlines;
            if (deadlines.Timeout <= TimeSpan.Zero)
            {
                ((IDrainWaiter)this).OnDrainDeadline();
                await _processing.ConfigureAwait(false);
            }
            else
            {
                Volatile.Write(ref _drainDeadline, deadlines.DeadlineFromNow());
                deadlines.Add(this);
                try
                {
                    await _processing.ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref _drained, 1);
                    deadlines.Remove(this);
                }
            }
        }

        _receiveArgs?.Dispose();
    }

    /// <summary>
    /// Fills the input pipe until the peer or the protocol is done, then waits for <paramref name="sending"/> and
    /// closes the socket: one task (and one state machine) for the connection's whole life besides the send loop.
    /// </summary>
    private async Task ReceiveLoopAsync(Task sending)
    {
        Exception? error = null;
        PipeWriter input = _input.Writer;
        bool draining = false;
        try
        {
            // Set when the last receive filled its buffer and the batch below stopped at its size: the kernel
            // probably holds more, so waiting for data first would cost a syscall for nothing.
            bool moreLikely = false;
            while (true)
            {
                if (_settings.WaitForData && !moreLikely)
                {
                    await ReceiveAsync(Memory<byte>.Empty).ConfigureAwait(false);
                }

                Memory<byte> buffer = input.GetMemory(MinimumReceiveSegment);
                int received = await ReceiveAsync(buffer).ConfigureAwait(false);
                if (received == 0)
                {
                    LogFinUnlessAborted();
                    break;
                }

                input.Advance(received);
                CountReceived(received);
                moreLikely = received == buffer.Length;

                // Take what the kernel already holds before flushing, so the protocol reads it in one go and answers
                // with one large send instead of one per block: with inline scheduling nothing else batches the
                // sends. Available > 0 means these receives complete at once; they never wait for the peer.
                int batched = received;
                bool fin = false;
                while (moreLikely && batched < _settings.ReceiveBatch)
                {
                    if (Available() == 0)
                    {
                        // Known empty: wait for data without holding a buffer, as an idle connection should.
                        moreLikely = false;
                        break;
                    }

                    buffer = input.GetMemory(MinimumReceiveSegment);
                    received = await ReceiveAsync(buffer).ConfigureAwait(false);
                    if (received == 0)
                    {
                        fin = true;
                        break;
                    }

                    input.Advance(received);
                    CountReceived(received);
                    batched += received;
                    moreLikely = received == buffer.Length;
                }

                // The protocol runs inside this flush under inline scheduling; the sends it causes leave together once
                // it returns (before the await: the continuation may run on another thread).
                ValueTask<FlushResult> flushing = _settings.BatchSends ? FlushBatched(input) : input.FlushAsync();

                FlushResult flush = await flushing.ConfigureAwait(false);
                if (fin)
                {
                    LogFinUnlessAborted();
                    break;
                }

                if (flush.IsCompleted || flush.IsCanceled)
                {
                    draining = true;
                    break;
                }
            }

            if (draining)
            {
                await DrainAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            error = ToConnectionError(ex);
        }
        finally
        {
            // Closing the socket under a pending receive may complete it with 0 bytes instead of an error: after Abort
            // that is not the peer's FIN, and the protocol's read must end with the abort reason.
            input.Complete(error ?? Volatile.Read(ref _abortReason));
            OnConnectionClosed();
        }

        // SendLoopAsync catches everything itself.
        await sending.ConfigureAwait(false);
        _epoll?.Unregister();
        CloseSocket();
    }

    private ValueTask<FlushResult> FlushBatched(PipeWriter input)
    {
        SendBatchScheduler.Enter();
        try
        {
            return input.FlushAsync();
        }
        finally
        {
            SendBatchScheduler.Exit(_logger);
        }
    }

    private void LogFinUnlessAborted()
    {
        if (Volatile.Read(ref _abortReason) is null)
        {
            SocketsLog.ConnectionReadFin(_logger, ConnectionId);
        }
    }

    /// <summary>
    /// Reads and discards what the peer still sends after the protocol stopped reading, until the peer closes:
    /// closing a socket with unread data would reset the peer and could destroy the reply it has not read yet.
    /// </summary>
    private async Task DrainAsync()
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            while (await ReceiveAsync(scratch).ConfigureAwait(false) != 0)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private async Task SendLoopAsync()
    {
        Exception? error = null;
        PipeReader output = _output.Reader;
        bool completedByProtocol = false;
        try
        {
            while (true)
            {
                ReadResult result = await output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    // Only Abort cancels this read. Completing with its reason makes the protocol's next write or
                    // flush throw it (as Kestrel's transport and our memory transport do), instead of a quiet
                    // "completed" that looks like a peer that stopped reading.
                    error = _abortReason;
                    break;
                }

                ReadOnlySequence<byte> buffer = result.Buffer;
                if (!buffer.IsEmpty && _epoll is { } epoll)
                {
                    ReadOnlySequence<byte> unsent = buffer;
                    while (!unsent.IsEmpty)
                    {
                        // Completes at once unless the socket's send buffer is full.
                        int sent = await epoll.SendAsync(unsent).ConfigureAwait(false);
                        unsent = unsent.Slice(sent);
                        CountSent(sent);
                    }
                }
                else if (!buffer.IsEmpty)
                {
                    // Rented per batch, not held per connection: idle connections are the many, senders the few.
                    // (Inline here: a helper async method would allocate its state machine whenever a send waits.)
                    SocketAwaitableEventArgs sender = SocketSenderPool.Rent();
                    try
                    {
                        ReadOnlySequence<byte> unsent = buffer;
                        while (!unsent.IsEmpty)
                        {
                            // A send may take only part of a long sequence (see SocketAwaitableEventArgs.MaxSendSegments).
                            int sent = await sender.SendAsync(Socket, unsent).ConfigureAwait(false);
                            unsent = unsent.Slice(sent);
                            CountSent(sent);
                        }
                    }
                    finally
                    {
                        // Reached only once the operation is over, failed or not: the sender is free.
                        SocketSenderPool.Return(sender);
                    }
                }

                output.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    completedByProtocol = true;
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ToConnectionError(ex);
        }
        finally
        {
            output.Complete(error);
            if (completedByProtocol)
            {
                // Everything the protocol wrote is sent: tell the peer we are done (FIN), keep reading until it is too.
                ShutdownSend();
            }
            else
            {
                // The peer cannot take our bytes any more: stop receiving too, so the connection ends.
                ShutdownBoth();
            }
        }
    }

    /// <summary>Turns what a socket loop caught into what the protocol sees: abort, reset, or an I/O error (logged).</summary>
    private Exception ToConnectionError(Exception ex)
    {
        switch (ex)
        {
            case SocketException or ObjectDisposedException when _abortReason is not null:
                return _abortReason;
            case SocketException socket when SocketErrors.IsAbort(socket.SocketErrorCode):
            case ObjectDisposedException:
                return new ConnectionAbortedException("The connection was aborted.", ex);
            case SocketException socket when SocketErrors.IsConnectionReset(socket.SocketErrorCode):
                SocketsLog.ConnectionReset(_logger, ConnectionId, socket.SocketErrorCode);
                MarkReset();
                return new ConnectionResetException(ex.Message, ex);
            default:
                SocketsLog.ConnectionError(_logger, ConnectionId, ex);
                return new IOException(ex.Message, ex);
        }
    }

    private void ShutdownSend() => Shutdown(SocketShutdown.Send);

    private void ShutdownBoth() => Shutdown(SocketShutdown.Both);

    private void Shutdown(SocketShutdown how)
    {
        try
        {
            if (Volatile.Read(ref _socket) is { } socket)
            {
                socket.Shutdown(how);
            }
            else
            {
                // ENOTCONN when the peer is already gone: nothing left to tell it either way.
                EpollNative.Shutdown(_handle, how);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The peer is already gone; nothing left to tell it.
        }
    }


}
