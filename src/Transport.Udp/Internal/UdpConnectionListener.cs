using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>
/// A bound UDP socket that presents each remote peer as a connection. One receive loop reads datagrams,
/// finds the peer's session by address (no allocation), and queues the datagram to it; a new peer becomes a
/// new connection for <see cref="AcceptAsync"/>, up to the session limit.
/// </summary>
internal sealed class UdpConnectionListener : IConnectionListener, IDatagramChannel
{
    /// <summary>Datagrams per recvmmsg call (the C reference server uses the same).</summary>
    private const int BatchSize = 64;

    /// <summary>Largest reply that goes through the send batch; larger ones are sent on their own.</summary>
    private const int SendSlotSize = 2048;

    private readonly Socket _socket;
    private readonly UdpTransportOptions _options;
    private readonly ILogger _logger;
    private readonly UdpEndpointMetrics _metrics;
    private readonly ConcurrentDictionary<SocketAddress, UdpConnection> _sessions = new();
    private readonly Channel<UdpConnection> _accepted = Channel.CreateUnbounded<UdpConnection>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly HashSet<SocketAddress> _oversizeLogged = [];
    private readonly string _name;
    private readonly Timer _idleSweep;
    private readonly TaskCompletionSource _closing = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Send batch (Linux): flushes made on the receive loop's thread while it delivers a batch (an inline protocol
    // answering) are queued here and leave in one sendmmsg when the batch is delivered. Only that thread touches it.
    private LinuxDatagramBatch? _sendBatch;
    private UdpConnection?[] _sendOwners = [];
    private int[] _sendLengths = [];
    private int _sendQueued;
    private int _sendStart;
    private int _batchingThread;
    private int _unbound;
    private int _closed;
    private int _limitWarned;

    public UdpConnectionListener(UdpEndPoint endpoint, UdpTransportOptions options, ILogger logger, UdpMetrics metrics)
    {
        _options = options;
        _logger = logger;
        var ip = (IPEndPoint)endpoint.Address;
        _socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any))
            {
                _socket.DualMode = true;
            }

            _socket.ReceiveBufferSize = options.SocketReceiveBufferSize;
            _socket.Bind(ip);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            _socket.Dispose();
            throw new AddressInUseException($"{endpoint} is already in use by another process.", ex);
        }
        catch (SocketException ex)
        {
            _socket.Dispose();
            throw new IOException($"Cannot listen on {endpoint}: {ex.Message}", ex);
        }

        EndPoint = new UdpEndPoint(_socket.LocalEndPoint!);
        _name = EndPoint.ToString()!;
        _metrics = metrics.For(EndPoint);
        TimeSpan sweep = options.SessionIdleTimeout / 4;
        _idleSweep = new Timer(static s => ((UdpConnectionListener)s!).OnSweepTimer(), this, sweep, sweep);
        // Runs until the socket closes (after unbind, with the last session); it contains its own faults.
        _ = ReceiveLoopAsync();
    }

    public EndPoint EndPoint { get; }

    /// <summary>
    /// For tests: called before each receive with whether it is a batched one; a non-zero <c>errno</c> makes that receive
    /// fail as if the kernel had returned it.
    /// </summary>
    internal Func<bool, int>? ReceiveFault { get; set; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            while (await _accepted.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_accepted.Reader.TryRead(out UdpConnection? connection))
                {
                    return connection;
                }
            }
        }
        catch (ChannelClosedException)
        {
        }

        return null;
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        // New peers are refused from now on; sessions already open keep the socket until they end.
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _accepted.Writer.TryComplete();
            while (_accepted.Reader.TryRead(out UdpConnection? orphan))
            {
                orphan.Abort(new ConnectionAbortedException("The listener was unbound before the session was accepted."));
                await orphan.DisposeAsync().ConfigureAwait(false);
            }

            CloseIfIdle();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
    }

    ValueTask IDatagramChannel.SendAsync(UdpConnection connection, ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken)
    {
        if (_batchingThread != 0 && _batchingThread == Environment.CurrentManagedThreadId && datagram.Length <= SendSlotSize)
        {
            LinuxDatagramBatch batch = _sendBatch!;
            if (_sendQueued == batch.Capacity)
            {
                FlushSends();
            }

            if (_sendQueued < batch.Capacity)
            {
                // The datagram is copied, so the writer's buffer is free when this returns, as after a real send.
                int slot = _sendQueued++;
                datagram.Span.CopyTo(batch.SendSlot(slot));
                batch.PrepareSend(slot, datagram.Length, connection.Peer!);
                _sendOwners[slot] = connection;
                _sendLengths[slot] = datagram.Length;
                return ValueTask.CompletedTask;
            }

            // The kernel's send buffer is full and the batch still holds what it refused: this one waits on its own
            // (UDP keeps no order, and this happens only under send pressure).
        }
        else if (_batchingThread != 0 && _batchingThread == Environment.CurrentManagedThreadId && _sendQueued > _sendStart)
        {
            // Too large for a slot: send what is queued first, so one peer's replies keep the order it was sent in.
            FlushSends();
        }

        return SendNowAsync(connection, datagram, cancellationToken);
    }

    private ValueTask SendNowAsync(UdpConnection connection, ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken)
    {
        ValueTask<int> sending = _socket.SendToAsync(datagram, SocketFlags.None, connection.Peer!, cancellationToken);
        if (sending.IsCompletedSuccessfully)
        {
            _ = sending.Result;
            return ValueTask.CompletedTask;
        }

        return new ValueTask(sending.AsTask());
    }

    void IDatagramChannel.OnDisposed(UdpConnection connection)
    {
        if (connection.Peer is not null && _sessions.TryRemove(new KeyValuePair<SocketAddress, UdpConnection>(connection.Peer, connection)))
        {
            _metrics.Sessions.Add(-1);
            if (_sessions.Count < _options.MaxSessions)
            {
                Volatile.Write(ref _limitWarned, 0);
            }
        }

        CloseIfIdle();
    }

    private void CloseIfIdle()
    {
        if (Volatile.Read(ref _unbound) != 0 && _sessions.IsEmpty && Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _closing.TrySetResult();
            _idleSweep.Dispose();
            _socket.Dispose();
        }
    }

    /// <summary>
    /// Receives until the socket is closed. Neither loop ends on a receive error (it backs off and reads again); an
    /// exception from delivering a datagram is a fault in our code, logged the same way, and the loop starts over.
    /// </summary>
    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        using var backoff = new RetryBackoff(TimeProvider.System, OnReceiveRecovered);
        bool batching = LinuxDatagramBatch.IsSupported;
        while (Volatile.Read(ref _closed) == 0)
        {
            try
            {
                if (batching)
                {
                    if (!await BatchReceiveLoopAsync(backoff).ConfigureAwait(false))
                    {
                        return;
                    }

                    batching = false;
                }

                await PortableReceiveLoopAsync(backoff).ConfigureAwait(false);
                return;
            }
            catch (Exception ex)
            {
                if (!await BackOffAsync(backoff, RetryBackoff.ErrorType(ex), ex.Message, ex).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    /// <summary>Counts and logs a failed receive, then waits before the next; false when the socket closed meanwhile.</summary>
    private async Task<bool> BackOffAsync(RetryBackoff backoff, string errorType, string reason, Exception? exception)
    {
        TimeSpan delay = backoff.Fail(out bool episodeStarted);
        _metrics.ReceiveError(errorType);
        if (episodeStarted)
        {
            UdpLog.ReceiveFailing(_logger, _name, errorType, reason, RetryBackoff.MaxDelay.TotalSeconds, exception);
        }
        else
        {
            UdpLog.ReceiveFailingAgain(_logger, _name, errorType, backoff.Failures, delay.TotalMilliseconds);
        }

        return await backoff.WaitAsync(delay, _closing.Task, CancellationToken.None).ConfigureAwait(false) && Volatile.Read(ref _closed) == 0;
    }

    private void OnReceiveRecovered(long failures, TimeSpan duration) => UdpLog.ReceiveRecovered(_logger, _name, failures, duration.TotalSeconds);

    /// <summary>
    /// Linux: drains the socket with recvmmsg, up to <see cref="BatchSize"/> datagrams per system call, and waits for
    /// readability with a zero-byte peek (which leaves the datagram queued). Per datagram that saves a system call
    /// and the socket's async machinery. Returns true when batching is unavailable and the portable loop should run.
    /// </summary>
    private async Task<bool> BatchReceiveLoopAsync(RetryBackoff backoff)
    {
        LinuxDatagramBatch batch;
        try
        {
            // One byte more than the largest datagram tells an oversize one apart (the kernel cuts it to the slot).
            batch = new LinuxDatagramBatch(BatchSize, _options.MaxDatagramSize + 1);
        }
        catch (OutOfMemoryException ex)
        {
            UdpLog.BatchReceiveUnavailable(_logger, _name, ex.Message);
            return true;
        }

        var address = new SocketAddress(_socket.AddressFamily);
        if (_sendBatch is null)
        {
            _sendBatch = new LinuxDatagramBatch(BatchSize, SendSlotSize, managed: true);
            _sendOwners = new UdpConnection?[BatchSize];
            _sendLengths = new int[BatchSize];
        }

        // Started over after a fault: what was queued then is lost, as a datagram may be.
        ResetSends();
        try
        {
            SafeHandle handle = _socket.SafeHandle;
            while (Volatile.Read(ref _closed) == 0)
            {
                int count;
                int error;
                try
                {
                    int injected = ReceiveFault?.Invoke(true) ?? 0;
                    if (injected == 0)
                    {
                        count = batch.Receive(handle, out error);
                    }
                    else
                    {
                        (count, error) = (-1, injected);
                    }
                }
                catch (ObjectDisposedException)
                {
                    return false;
                }
                catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
                {
                    UdpLog.BatchReceiveUnavailable(_logger, _name, ex.Message);
                    return true;
                }

                if (count < 0)
                {
                    if (Volatile.Read(ref _closed) != 0)
                    {
                        return false;
                    }

                    SocketError socketError = LinuxDatagramBatch.ToSocketError(error);
                    if (socketError is SocketError.ConnectionReset or SocketError.ConnectionRefused
                        or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.MessageSize)
                    {
                        UdpLog.ReceiveErrorIgnored(_logger, _name, socketError.ToString());
                        continue;
                    }

                    if (LinuxDatagramBatch.IsUnsupported(error))
                    {
                        UdpLog.BatchReceiveUnavailable(_logger, _name, $"errno {error}, {socketError}");
                        return true;
                    }

                    // ENOBUFS, ENOMEM or anything else: the socket is still good, and so is recvmmsg. Wait, then read again.
                    string errorType = socketError == SocketError.SocketError ? $"errno {error}" : socketError.ToString();
                    if (!await BackOffAsync(backoff, errorType, $"recvmmsg failed with errno {error}", null).ConfigureAwait(false))
                    {
                        return false;
                    }

                    continue;
                }

                if (count > 0)
                {
                    backoff.Succeed();
                }

                _batchingThread = Environment.CurrentManagedThreadId;
                for (int i = 0; i < count; i++)
                {
                    batch.CopyAddress(i, address);
                    int received = batch.ReceivedLength(i);
                    if (received > _options.MaxDatagramSize)
                    {
                        OnOversize(address);
                        continue;
                    }

                    Dispatch(address, batch.Datagram(i, received));
                }

                _batchingThread = 0;
                FlushSends();
                if (_sendStart < _sendQueued)
                {
                    await DrainSendsAsync().ConfigureAwait(false);
                }

                if (count == batch.Capacity)
                {
                    // A full batch: more are likely queued, so read again before paying for a readiness wait.
                    continue;
                }

                // Wait here rather than in a helper: an async helper would allocate its state machine each time it waits.
                try
                {
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek).ConfigureAwait(false);
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted && Volatile.Read(ref _closed) != 0)
                {
                    return false;
                }
                catch (ObjectDisposedException)
                {
                    return false;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused
                    or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.MessageSize)
                {
                    // An ICMP error from some peer: the next recvmmsg goes on with the queued datagrams.
                    UdpLog.ReceiveErrorIgnored(_logger, _name, ex.SocketErrorCode.ToString());
                }
                catch (Exception ex)
                {
                    // ENOBUFS or ENOMEM while waiting, or anything unexpected: wait, then read again.
                    if (!await BackOffAsync(backoff, RetryBackoff.ErrorType(ex), ex.Message, ex is SocketException ? null : ex).ConfigureAwait(false))
                    {
                        return false;
                    }
                }
            }

            return false;
        }
        finally
        {
            _batchingThread = 0;
            batch.Dispose();
        }
    }

    /// <summary>
    /// Sends the queued replies with sendmmsg, without blocking. A datagram the kernel refuses fails its own session
    /// and the rest still go; if the send buffer is full, what is left stays queued for <see cref="DrainSendsAsync"/>.
    /// </summary>
    private void FlushSends()
    {
        LinuxDatagramBatch batch = _sendBatch!;
        int thread = _batchingThread;

        // A failed send ends a session's input, which may run its protocol right here: it must not queue into
        // the batch being sent.
        _batchingThread = 0;
        while (_sendStart < _sendQueued)
        {
            int sent;
            int error;
            try
            {
                sent = batch.Send(_socket.SafeHandle, _sendStart, _sendQueued - _sendStart, out error);
            }
            catch (ObjectDisposedException)
            {
                ResetSends();
                return;
            }

            if (sent > 0)
            {
                _sendStart += sent;
            }
            else if (sent == 0)
            {
                _batchingThread = thread;
                return;
            }
            else
            {
                UdpConnection owner = _sendOwners[_sendStart]!;
                _sendStart++;
                owner.OnBatchedSendFailed(new SocketException((int)LinuxDatagramBatch.ToSocketError(error)));
            }
        }

        ResetSends();
        _batchingThread = thread;
    }

    /// <summary>
    /// Sends what <see cref="FlushSends"/> left because the kernel's send buffer was full, waiting for room. Only the
    /// receive loop calls it, between batches, so nothing queues meanwhile.
    /// </summary>
    private async ValueTask DrainSendsAsync()
    {
        LinuxDatagramBatch batch = _sendBatch!;
        for (; _sendStart < _sendQueued; _sendStart++)
        {
            UdpConnection owner = _sendOwners[_sendStart]!;
            try
            {
                await _socket.SendToAsync(batch.SlotMemory(_sendStart, _sendLengths[_sendStart]), SocketFlags.None, owner.Peer!).ConfigureAwait(false);
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

        ResetSends();
    }

    private void ResetSends()
    {
        Array.Clear(_sendOwners, 0, _sendQueued);
        _sendQueued = 0;
        _sendStart = 0;
    }

    private async Task PortableReceiveLoopAsync(RetryBackoff backoff)
    {
        // One buffer for the life of the listener; one byte more than the largest datagram tells an oversize one apart.
        byte[] buffer = GC.AllocateUninitializedArray<byte>(_options.MaxDatagramSize + 1, pinned: true);
        var address = new SocketAddress(_socket.AddressFamily);
        while (Volatile.Read(ref _closed) == 0)
        {
            int received;
            try
            {
                int injected = ReceiveFault?.Invoke(false) ?? 0;
                received = injected == 0
                    ? await _socket.ReceiveFromAsync(buffer, SocketFlags.None, address).ConfigureAwait(false)
                    : throw new SocketException((int)LinuxDatagramBatch.ToSocketError(injected));
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted && Volatile.Read(ref _closed) != 0)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused
                or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.MessageSize)
            {
                UdpLog.ReceiveErrorIgnored(_logger, _name, ex.SocketErrorCode.ToString());
                continue;
            }
            catch (Exception ex)
            {
                if (!await BackOffAsync(backoff, RetryBackoff.ErrorType(ex), ex.Message, ex is SocketException ? null : ex).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            backoff.Succeed();
            if (received > _options.MaxDatagramSize)
            {
                OnOversize(address);
                continue;
            }

            Dispatch(address, buffer.AsSpan(0, received));
        }
    }

    private void Dispatch(SocketAddress address, ReadOnlySpan<byte> datagram)
    {
        if (!_sessions.TryGetValue(address, out UdpConnection? session) && !TryOpenSession(address, out session))
        {
            return;
        }

        if (session.Deliver(datagram))
        {
            _metrics.Received.Add(1);
        }
        else
        {
            _metrics.Dropped.Add(1);
            UdpLog.QueueFull(_logger, _name, session.ConnectionId, session.RemoteEndPoint?.ToString());
        }
    }

    private bool TryOpenSession(SocketAddress address, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out UdpConnection? session)
    {
        session = null;
        if (Volatile.Read(ref _unbound) != 0)
        {
            _metrics.Refused.Add(1);
            return false;
        }

        if (_sessions.Count >= _options.MaxSessions)
        {
            _metrics.Refused.Add(1);
            if (Interlocked.Exchange(ref _limitWarned, 1) == 0)
            {
                UdpLog.SessionLimitReached(_logger, _name, _options.MaxSessions);
            }

            return false;
        }

        var peer = new SocketAddress(address.Family, address.Size);
        address.Buffer.CopyTo(peer.Buffer);
        EndPoint remote = ((IPEndPoint)((UdpEndPoint)EndPoint).Address).Create(peer);
        session = new UdpConnection(this, peer, EndPoint, new UdpEndPoint(remote), _options, _logger);
        _sessions[peer] = session;
        _metrics.Sessions.Add(1);
        _accepted.Writer.TryWrite(session);
        return true;
    }

    private void OnOversize(SocketAddress address)
    {
        _metrics.Oversize.Add(1);
        lock (_oversizeLogged)
        {
            if (_oversizeLogged.Count >= 1024 || _oversizeLogged.Contains(address))
            {
                return;
            }

            var copy = new SocketAddress(address.Family, address.Size);
            address.Buffer.CopyTo(copy.Buffer);
            _oversizeLogged.Add(copy);
        }

        EndPoint peer = ((IPEndPoint)((UdpEndPoint)EndPoint).Address).Create(address);
        UdpLog.OversizeDatagram(_logger, _name, _options.MaxDatagramSize, peer.ToString()!);
    }

    private void OnSweepTimer()
    {
        // A timer callback that throws ends the process: ending a session runs its protocol's code (inline
        // scheduling), so whatever escapes is logged and the next tick sweeps again.
        try
        {
            SweepIdleSessions();
        }
        catch (Exception ex)
        {
            UdpLog.SweepFailed(_logger, _name, ex);
        }
    }

    private void SweepIdleSessions()
    {
        long now = Environment.TickCount64;
        long idleMs = (long)_options.SessionIdleTimeout.TotalMilliseconds;

        // Values is a snapshot: ending a session can run its protocol inline, which disposes it and removes it
        // from _sessions inside this loop, and the walk must still reach every other idle session.
        foreach (UdpConnection session in _sessions.Values)
        {
            long idle = now - session.LastActivity;
            if (idle >= idleMs)
            {
                try
                {
                    UdpLog.SessionIdle(_logger, _name, session.ConnectionId, session.RemoteEndPoint?.ToString(), idle / 1000.0);
                    session.EndInput(null);
                }
                catch (Exception ex)
                {
                    // A timer callback must not throw (that ends the process), and one session must not stop the sweep.
                    UdpLog.SweepFailed(_logger, _name, session.ConnectionId, ex);
                }
            }
        }
    }
}
