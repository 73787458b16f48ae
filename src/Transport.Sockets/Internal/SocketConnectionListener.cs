using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Sockets.Internal;

internal sealed class SocketConnectionListener : IConnectionListener, IListenerHealth
{
    private readonly EndPoint _requested;
    private readonly SocketTransportOptions _options;
    private readonly SocketConnectionSettings _connectionSettings;
    private readonly ILogger _logger;
    private readonly SocketMetrics _metrics;
    // Accept failures are retried, never thrown: one accept loop at a time owns this, as IConnectionListener intends.
    private readonly RetryBackoff _backoff;
    private readonly TaskCompletionSource _unbinding = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _listenSocket;
    private string? _socketFile;
    private int _unbound;
    private readonly bool _reusePort;
    private readonly Epoll.EpollEngine? _engine;
    // Accepts on one of the transport's I/O threads (set at bind when they serve this listener's connections).
    private Epoll.EpollSocket? _acceptor;
    // Every connection's local address when the listener has only one (set with _acceptor); null: ask each connection.
    private EndPoint? _connectionLocalEndPoint;

    public SocketConnectionListener(EndPoint endpoint, SocketTransportOptions options, TransportListenOptions limits, BlockMemoryPool memoryPool,
        ILogger logger, SocketMetrics metrics, TimeProvider time, DrainDeadlines drainDeadlines, Epoll.EpollEngine? engine = null)
    {
        _requested = endpoint;
        _options = options;
        _connectionSettings = new SocketConnectionSettings(options, limits, memoryPool, logger, drainDeadlines, engine, acceptedOnIoThread: engine is not null);
        _reusePort = limits.ReusePort;
        _engine = engine;
        _logger = logger;
        _metrics = metrics;
        _backoff = new RetryBackoff(time, OnAcceptRecovered);
        EndPoint = endpoint;
    }

    /// <inheritdoc />
    public bool AcceptFailing => _backoff.Failing;

    public EndPoint EndPoint { get; private set; }

    /// <summary>The bound socket, for tests that make the OS fail <c>accept</c> on it.</summary>
    internal Socket? ListenSocket => _listenSocket;

    public void Bind()
    {
        Socket socket;
        if (_requested is InheritedSocketEndPoint inherited)
        {
            // Bound and listening already, by whoever started us; _socketFile stays null: a socket file we did not create is never unlinked.
            _listenSocket = inherited.Socket;
            EndPoint = inherited.Socket.LocalEndPoint ?? _requested;
            DescriptorReserve.Enable();
            UseIoThreadForAccepts(inherited.Socket);
            return;
        }

        if (_requested is UnixDomainSocketEndPoint unix)
        {
            string path = unix.ToString();
            UnixSocketPath.Prepare(path, _logger);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _socketFile = path;
        }
        else
        {
            var ip = (IPEndPoint)_requested;
            socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (ip.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            if (_reusePort)
            {
                ReusePort.Enable(socket);
            }
        }

        try
        {
            socket.Bind(_requested);
            socket.Listen(_options.Backlog);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            _socketFile = null;
            throw BindErrors.ToException(TransportUrl.Format(_requested), ex);
        }

        _listenSocket = socket;
        EndPoint = socket.LocalEndPoint ?? _requested;
        DescriptorReserve.Enable();
        UseIoThreadForAccepts(socket);
    }

    /// <summary>
    /// When the transport's I/O threads serve the connections, one of them accepts them too: the accept loop then runs
    /// there, with no hop through .NET's socket thread and the thread pool per connection (as nginx's workers accept).
    /// </summary>
    private void UseIoThreadForAccepts(Socket socket)
    {
        if (_engine is null)
        {
            return;
        }

        // accept4 must not block the I/O thread when another process sharing the socket took the connection first.
        socket.Blocking = false;
        _acceptor = Epoll.EpollSocket.Create(socket.SafeHandle, _engine);
        // Bound to one address (or a socket path), every connection's own address is the listener's: share it.
        _connectionLocalEndPoint = EndPoint switch
        {
            IPEndPoint ip when !ip.Address.Equals(IPAddress.Any) && !ip.Address.Equals(IPAddress.IPv6Any) => ip,
            UnixDomainSocketEndPoint unix => unix,
            _ => null,
        };
    }

    /// <summary>Accepts on the I/O thread's terms: at once when a connection is queued, else when the socket is next readable.</summary>
    private ValueTask<AcceptedDescriptor> AcceptOnIoThread(Epoll.EpollSocket acceptor, Socket listenSocket)
    {
        acceptor.BeginAttempt();
        if (TryAccept(listenSocket, out AcceptedDescriptor accepted, out SocketError error))
        {
            return new ValueTask<AcceptedDescriptor>(accepted);
        }

        return error == SocketError.WouldBlock
            ? WaitThenAcceptAsync(acceptor, listenSocket)
            : ValueTask.FromException<AcceptedDescriptor>(new SocketException((int)error));
    }

    private async ValueTask<AcceptedDescriptor> WaitThenAcceptAsync(Epoll.EpollSocket acceptor, Socket listenSocket)
    {
        while (true)
        {
            await acceptor.WaitReadableAsync().ConfigureAwait(false);
            acceptor.BeginAttempt();
            if (TryAccept(listenSocket, out AcceptedDescriptor accepted, out SocketError error))
            {
                return accepted;
            }

            if (error != SocketError.WouldBlock)
            {
                throw new SocketException((int)error);
            }
        }
    }

    /// <summary>
    /// accept4 with the peer's address, which the same call gives: no .NET <see cref="Socket"/> yet (its constructor asks
    /// the kernel eight questions and keeps two more addresses; see <see cref="SocketConnection.Socket"/>).
    /// </summary>
    private unsafe bool TryAccept(Socket listenSocket, out AcceptedDescriptor accepted, out SocketError error)
    {
        byte* address = stackalloc byte[SocketAddresses.MaxLength];
        uint length = SocketAddresses.MaxLength;
        int fd = Epoll.EpollNative.Accept(listenSocket.SafeHandle, address, &length, out error);
        if (fd < 0)
        {
            accepted = default;
            return false;
        }

        var handle = new Epoll.SocketDescriptor(fd);
        EndPoint? remote = SocketAddresses.ToEndPoint(new ReadOnlySpan<byte>(address, (int)Math.Min(length, SocketAddresses.MaxLength)), EndPoint);
        EndPoint? local = _connectionLocalEndPoint;
        if (local is null)
        {
            // A wildcard listener: the address the peer reached is this connection's own.
            length = SocketAddresses.MaxLength;
            if (Epoll.EpollNative.GetSocketName(handle, address, &length))
            {
                local = SocketAddresses.ToEndPoint(new ReadOnlySpan<byte>(address, (int)Math.Min(length, SocketAddresses.MaxLength)), EndPoint);
            }
        }

        accepted = new AcceptedDescriptor(handle, local, remote);
        return true;
    }

    /// <summary>A connection accepted on an I/O thread: its descriptor and addresses.</summary>
    private readonly record struct AcceptedDescriptor(SafeHandle Handle, EndPoint? LocalEndPoint, EndPoint? RemoteEndPoint);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        Socket? listenSocket = _listenSocket;
        if (listenSocket is null)
        {
            return null;
        }

        while (true)
        {
            if (!DescriptorReserve.TryRestore())
            {
                // Still at the descriptor limit: an accept now would take what the runtime needs to start a thread.
                if (Volatile.Read(ref _unbound) != 0 || !await BackOffAsync(new SocketException((int)SocketError.TooManyOpenSockets), cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                continue;
            }

            Socket? accepted = null;
            AcceptedDescriptor descriptor = default;
            try
            {
                // A caller that can cancel gets .NET's accept, which honours the token; ours ends only at unbind.
                if (_acceptor is { } acceptor && !cancellationToken.CanBeCanceled)
                {
                    ValueTask<AcceptedDescriptor> accepting = AcceptOnIoThread(acceptor, listenSocket);
                    if (!accepting.IsCompleted)
                    {
                        // Waiting for a connection: accept4 would have failed at once without a free descriptor, so they are back.
                        _backoff.Succeed();
                    }

                    descriptor = await accepting.ConfigureAwait(false);
                }
                else
                {
                    ValueTask<Socket> accepting = listenSocket.AcceptAsync(cancellationToken);
                    if (!accepting.IsCompleted)
                    {
                        _backoff.Succeed();
                    }

                    accepted = await accepting.ConfigureAwait(false);
                }
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted || Volatile.Read(ref _unbound) != 0)
            {
                return null;
            }
            catch (SocketException ex) when (SocketErrors.IsConnectionReset(ex.SocketErrorCode))
            {
                SocketsLog.AcceptReset(_logger, TransportUrl.Format(EndPoint));
                continue;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Out of descriptors (EMFILE, ENFILE), of socket buffers or memory (ENOBUFS, ENOMEM), or anything else:
                // the listening socket is still ours and the kernel keeps queueing connections, so wait and try again.
                // Ending here would leave the process running and the endpoint refusing everyone, for good.
                if (ex is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets })
                {
                    DescriptorReserve.Release();
                }

                if (Volatile.Read(ref _unbound) != 0 || !await BackOffAsync(ex, cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                continue;
            }

            _backoff.Succeed();
            SafeHandle handle = accepted?.SafeHandle ?? descriptor.Handle;
            if (!DescriptorReserve.HasHeadroom(handle.DangerousGetHandle()))
            {
                // This one is served; the next waits until descriptors are free again.
                DescriptorReserve.Release();
            }

            SocketConnection connection;
            if (accepted is not null)
            {
                if (_options.NoDelay && accepted.AddressFamily != AddressFamily.Unix)
                {
                    accepted.NoDelay = true;
                }

                connection = new SocketConnection(accepted, _connectionSettings);
            }
            else
            {
                if (_options.NoDelay && listenSocket.AddressFamily != AddressFamily.Unix)
                {
                    Epoll.EpollNative.SetNoDelay(handle);
                }

                connection = new SocketConnection(handle, descriptor.LocalEndPoint, descriptor.RemoteEndPoint, _connectionSettings);
            }

            connection.Start();
            return connection;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _unbinding.TrySetResult();
            _backoff.Dispose();
            // Ends a wait for the next connection on the I/O thread (closing the socket only takes it out of the epoll set).
            _acceptor?.Abort();
            _listenSocket?.Dispose();
            _acceptor?.Unregister();
            RemoveSocketFile();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();

    /// <summary>Counts and logs a failed accept, then waits before the next; false when unbinding ended the wait.</summary>
    private async Task<bool> BackOffAsync(Exception error, CancellationToken cancellationToken)
    {
        TimeSpan delay = _backoff.Fail(out bool episodeStarted);
        string url = TransportUrl.Format(EndPoint);
        string errorType = RetryBackoff.ErrorType(error);
        var tags = new System.Diagnostics.TagList();
        foreach (KeyValuePair<string, object?> tag in Transport.Internal.TransportTelemetry.ServerTags(EndPoint))
        {
            tags.Add(tag);
        }

        tags.Add("error.type", errorType);
        _metrics.AcceptErrors.Add(1, in tags);
        if (episodeStarted)
        {
            // The OS error says it all; a stack trace only helps when the failure is not the OS's.
            SocketsLog.AcceptFailing(_logger, url, errorType, error.Message, RetryBackoff.MaxDelay.TotalSeconds, error is SocketException ? null : error);
        }
        else
        {
            SocketsLog.AcceptFailingAgain(_logger, url, errorType, _backoff.Failures, delay.TotalMilliseconds);
        }

        return await _backoff.WaitAsync(delay, _unbinding.Task, cancellationToken).ConfigureAwait(false);
    }

    private void OnAcceptRecovered(long failures, TimeSpan duration) =>
        SocketsLog.AcceptRecovered(_logger, TransportUrl.Format(EndPoint), failures, duration.TotalSeconds);

    private void RemoveSocketFile()
    {
        string? path = _socketFile;
        if (path is null || UnixSocketPath.IsSocket(path) != true)
        {
            return;
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            SocketsLog.SocketFileRemoveFailed(_logger, path, ex);
        }
    }
}
