using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal;

/// <summary>
/// One bound listener: accepts connections, enforces the connection limit, runs the protocol on each
/// connection, and drains them at shutdown.
/// </summary>
internal sealed class EndpointListener
{
    private readonly IConnectionListener _listener;
    private readonly ConnectionHandler _protocol;
    private readonly long? _maxConnections;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly ConcurrentDictionary<ConnectionContext, byte> _connections = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _active;
    private int _stopping;
    private int _limitWarned;
    private Task _acceptLoop = Task.CompletedTask;

    public EndpointListener(string name, string protocolName, IConnectionListener listener, ConnectionHandler protocol,
        long? maxConnections, TimeSpan shutdownTimeout, ILogger logger, TransportMetrics metrics)
    {
        Name = name;
        ProtocolName = protocolName;
        _listener = listener;
        _protocol = protocol;
        _maxConnections = maxConnections;
        ShutdownTimeout = shutdownTimeout;
        _logger = logger;
        _metrics = metrics;
        _tag = new KeyValuePair<string, object?>("transport.endpoint", name);
    }

    public string Name { get; }

    public string ProtocolName { get; }

    public TimeSpan ShutdownTimeout { get; }

    public TransportBinding Binding => new(Name, ProtocolName, _listener.EndPoint);

    public long ActiveConnections => Interlocked.Read(ref _active);

    public void Start() => _acceptLoop = AcceptLoopAsync();

    public async Task UnbindAsync(CancellationToken cancellationToken)
    {
        await _listener.UnbindAsync(cancellationToken).ConfigureAwait(false);
        await _acceptLoop.ConfigureAwait(false);
        await _listener.DisposeAsync().ConfigureAwait(false);
        TransportLog.Unbound(_logger, TransportUrl.Format(_listener.EndPoint), Name);
    }

    /// <summary>Asks every open connection to close, waits up to the deadline, then aborts the rest.</summary>
    public async Task DrainAsync(CancellationToken hostDeadline)
    {
        Volatile.Write(ref _stopping, 1);
        if (Interlocked.Read(ref _active) == 0)
        {
            _drained.TrySetResult();
            return;
        }

        TransportLog.Draining(_logger, Interlocked.Read(ref _active), Name, ShutdownTimeout);
        foreach (ConnectionContext connection in _connections.Keys)
        {
            connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }

        try
        {
            await _drained.Task.WaitAsync(ShutdownTimeout, hostDeadline).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            // Deadline passed: abort below.
        }

        long remaining = Interlocked.Read(ref _active);
        TransportLog.AbortingAtDeadline(_logger, remaining, Name);
        _metrics.Aborted.Add(remaining, _tag);
        foreach (ConnectionContext connection in _connections.Keys)
        {
            connection.Abort(new ConnectionAbortedException("The server is shutting down and the shutdown deadline passed."));
        }

        // Aborted connections end promptly; a protocol that ignores the abort is not waited for beyond the host's own deadline.
        try
        {
            await _drained.Task.WaitAsync(hostDeadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The host gave up waiting; so do we.
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (true)
            {
                ConnectionContext? connection = await _listener.AcceptAsync().ConfigureAwait(false);
                if (connection is null)
                {
                    return;
                }

                long active = Interlocked.Increment(ref _active);
                if (active > _maxConnections || Volatile.Read(ref _stopping) != 0)
                {
                    Reject(connection);
                    OnConnectionEnded();
                    continue;
                }

                _connections.TryAdd(connection, 0);
                _metrics.Active.Add(1, _tag);
                _metrics.Accepted.Add(1, _tag);
                ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Listener.RunConnectionAsync(state.Connection),
                    (Listener: this, Connection: connection), preferLocal: false);
            }
        }
        catch (Exception ex)
        {
            TransportLog.AcceptFailed(_logger, Name, ex);
        }
    }

    private void Reject(ConnectionContext connection)
    {
        long limit = _maxConnections ?? 0;
        _metrics.Rejected.Add(1, _tag);
        if (Interlocked.Exchange(ref _limitWarned, 1) == 0)
        {
            TransportLog.ConnectionLimitReached(_logger, Name, limit);
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            TransportLog.ConnectionRejected(_logger, connection.ConnectionId, Name, limit);
        }
        connection.Abort(new ConnectionAbortedException($"Endpoint '{Name}' is at its limit of {limit} connections."));
        _ = DisposeRejectedAsync(connection);
    }

    /// <summary>Not awaited, so the accept loop goes on at once: it catches and logs whatever the dispose throws.</summary>
    private async Task DisposeRejectedAsync(ConnectionContext connection)
    {
        try
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
        }
    }

    private async Task RunConnectionAsync(ConnectionContext connection)
    {
        // Queued and never awaited: every failure must end here, caught and logged, and the connection disposed.
        bool debug = _logger.IsEnabled(LogLevel.Debug);
        try
        {
            if (debug)
            {
                TransportLog.ConnectionAccepted(_logger, connection.ConnectionId, Name, connection.RemoteEndPoint?.ToString());
            }

            await _protocol.OnConnectedAsync(connection).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ConnectionResetException or ConnectionAbortedException or IOException)
        {
            TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
        }
        catch (OperationCanceledException ex) when (connection.ConnectionClosed.IsCancellationRequested)
        {
            TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
        }
        catch (Exception ex)
        {
            _metrics.ProtocolErrors.Add(1, _tag);
            TransportLog.ProtocolFailed(_logger, ProtocolName, connection.ConnectionId, Name, ex);
        }
        finally
        {
            try
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
            }

            _connections.TryRemove(connection, out _);
            _metrics.Active.Add(-1, _tag);
            if (debug)
            {
                TransportLog.ConnectionClosed(_logger, connection.ConnectionId, Name);
            }
            OnConnectionEnded();
        }
    }

    private void OnConnectionEnded()
    {
        long active = Interlocked.Decrement(ref _active);
        if (active < _maxConnections)
        {
            Volatile.Write(ref _limitWarned, 0);
        }

        if (active == 0 && Volatile.Read(ref _stopping) != 0)
        {
            _drained.TrySetResult();
        }
    }
}
