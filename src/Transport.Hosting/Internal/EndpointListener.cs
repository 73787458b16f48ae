using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal;

/// <summary>
/// One bound listener: accepts connections, enforces the connection limit, runs the protocol on each
/// connection, and drains them at shutdown.
/// </summary>
internal sealed class EndpointListener
{
    private readonly IConnectionListener _listener;
    private readonly ConnectionDelegate _application;
    private readonly long? _maxConnections;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly ConnectionRegistry _registry;
    private readonly KeyValuePair<string, object?> _tag;
    private readonly ConcurrentDictionary<ConnectionContext, byte> _connections = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _unbinding = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _active;
    private int _stopping;
    private int _limitWarned;
    private Task _acceptLoop = Task.CompletedTask;

    public EndpointListener(string name, string protocolName, IConnectionListener listener, ConnectionDelegate application,
        long? maxConnections, TimeSpan shutdownTimeout, ILogger logger, TransportMetrics metrics, ConnectionRegistry registry)
    {
        Name = name;
        ProtocolName = protocolName;
        _listener = listener;
        _application = application;
        _maxConnections = maxConnections;
        ShutdownTimeout = shutdownTimeout;
        _logger = logger;
        _metrics = metrics;
        _registry = registry;
        _tag = new KeyValuePair<string, object?>("transport.endpoint", name);
    }

    public string Name { get; }

    public string ProtocolName { get; }

    public TimeSpan ShutdownTimeout { get; }

    public TransportBinding Binding => new(Name, ProtocolName, _listener.EndPoint);

    public long ActiveConnections => Interlocked.Read(ref _active);

    /// <summary>The clock of the accept loop's retry delays.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public void Start() => _acceptLoop = AcceptLoopAsync();

    public async Task UnbindAsync(CancellationToken cancellationToken)
    {
        // First, so that an accept loop waiting out a retry delay, or on a transport that throws, ends now.
        _unbinding.TrySetResult();
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

    /// <summary>
    /// Runs until the transport says it is unbound (a null accept) or <see cref="UnbindAsync"/> is called. An exception
    /// from the transport, ours or a user's, is logged once per episode, counted, and retried with a growing delay.
    /// </summary>
    private async Task AcceptLoopAsync()
    {
        using var backoff = new RetryBackoff(Time, (failures, duration) => TransportLog.AcceptRecovered(_logger, Name, failures, duration.TotalSeconds));
        while (true)
        {
            ConnectionContext? connection;
            try
            {
                ValueTask<ConnectionContext?> accepting = _listener.AcceptAsync();
                if (!accepting.IsCompleted)
                {
                    // The transport is waiting for a connection rather than failing: that ends a failure episode too.
                    backoff.Succeed();
                }

                connection = await accepting.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                if (!await BackOffAsync(backoff, ex).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            if (connection is null)
            {
                return;
            }

            backoff.Succeed();

            long active = Interlocked.Increment(ref _active);
            if (active > _maxConnections || Volatile.Read(ref _stopping) != 0)
            {
                try
                {
                    Reject(connection);
                }
                catch (Exception ex)
                {
                    TransportLog.RejectFailed(_logger, connection.ConnectionId, Name, ex);
                }

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

    /// <summary>Counts and logs a failed accept, then waits before the next; false when the endpoint is being unbound.</summary>
    private async Task<bool> BackOffAsync(RetryBackoff backoff, Exception error)
    {
        TimeSpan delay = backoff.Fail(out bool episodeStarted);
        string errorType = RetryBackoff.ErrorType(error);
        _metrics.AcceptErrors.Add(1, _tag, new KeyValuePair<string, object?>("error.type", errorType));
        if (episodeStarted)
        {
            TransportLog.AcceptFailing(_logger, Name, errorType, RetryBackoff.MaxDelay.TotalSeconds, error);
        }
        else
        {
            TransportLog.AcceptFailingAgain(_logger, Name, errorType, backoff.Failures, delay.TotalMilliseconds);
        }

        return await backoff.WaitAsync(delay, _unbinding.Task, CancellationToken.None).ConfigureAwait(false);
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

            // Unregistered when the protocol returns, before the connection is disposed below.
            await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable registration = _registry.Register(connection, Name).ConfigureAwait(false);
            await _application(connection).ConfigureAwait(false);
        }
        catch (ProtocolViolationException ex)
        {
            // The client's bad input, not a fault of ours: no stack trace, no Error, one line and a count.
            _metrics.InvalidInput.Add(1, _tag, new KeyValuePair<string, object?>("transport.protocol", ProtocolName));
            TransportLog.InvalidInput(_logger, connection.ConnectionId, Name, ProtocolName, ex.Message);
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
