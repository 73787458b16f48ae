using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal;

/// <summary>
/// One bound listener: accepts connections, enforces the connection limit, runs the protocol on each
/// connection, and drains them at shutdown. What it serves new connections with is its current
/// <see cref="EndpointGeneration"/>, which a configuration reload replaces while the listener stays bound.
/// </summary>
internal sealed class EndpointListener
{
    private readonly IConnectionListener _listener;
    private RetryBackoff? _acceptBackoff;
    private EndpointGeneration _generation;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly ConnectionRegistry _registry;
    private readonly ConcurrentDictionary<ConnectionContext, byte> _connections = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _unbinding = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _active;
    private long _queued;
    private int _stopping;
    private int _abortingAtDeadline;
    private int _limitWarned;
    private Task _acceptLoop = Task.CompletedTask;

    public EndpointListener(string name, IConnectionListener listener, EndpointGeneration generation, ILogger logger, TransportMetrics metrics,
        ConnectionRegistry registry)
    {
        Name = name;
        _listener = listener;
        _generation = generation.ForAddress(listener.EndPoint);
        _logger = logger;
        _metrics = metrics;
        _registry = registry;
    }

    public string Name { get; }

    public string ProtocolName => Volatile.Read(ref _generation).ProtocolName;

    public TimeSpan ShutdownTimeout => Volatile.Read(ref _generation).ShutdownTimeout;

    public TransportBinding Binding => new(Name, ProtocolName, _listener.EndPoint);

    /// <summary>The bound address (port 0 resolved).</summary>
    public EndPoint EndPoint => _listener.EndPoint;

    public long ActiveConnections => Interlocked.Read(ref _active);

    /// <summary>
    /// Whether the endpoint cannot accept right now: its last accept failed (out of descriptors, say), in the engine's
    /// loop or in a transport that retries by itself, and none has succeeded since.
    /// </summary>
    public bool AcceptFailing => _acceptBackoff?.Failing == true || _listener is IListenerHealth { AcceptFailing: true };

    /// <summary>The endpoint's MaxConcurrentConnections; null for no limit.</summary>
    public long? MaxConnections => Volatile.Read(ref _generation).MaxConnections;

    /// <summary>Connections handed to the protocol and not yet ended (without those being rejected).</summary>
    public long ServedConnections => _connections.Count;

    /// <summary>Connections accepted and waiting for a thread to start their protocol.</summary>
    public long QueuedConnections => Interlocked.Read(ref _queued);

    /// <summary>This endpoint's tag sets.</summary>
    public EndpointTelemetry Telemetry => Volatile.Read(ref _generation).Telemetry;

    /// <summary>The clock of the accept loop's retry delays.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    public void Start()
    {
        // The loop, and the protocols it starts on the transport's I/O thread, run without the starter's execution context
        // (its AsyncLocals: Activity.Current, a logging scope of whoever started the host), as a work item queued to the
        // thread pool without flow does. A captured context would also cost the pipes an allocation per completion.
        using (ExecutionContext.SuppressFlow())
        {
            _acceptLoop = Task.Run(AcceptLoopAsync);
        }
    }

    /// <summary>Serves new connections with <paramref name="generation"/>; open ones finish on the one they were accepted with.</summary>
    public void Apply(EndpointGeneration generation) => Volatile.Write(ref _generation, generation.ForAddress(_listener.EndPoint));

    /// <summary>Whether the accept loop started and has not ended (the systemd watchdog pings only while every one runs).</summary>
    public bool AcceptLoopRunning => !_acceptLoop.IsCompleted;

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
        long started = _metrics.DrainDuration.Enabled ? Stopwatch.GetTimestamp() : 0;
        try
        {
            await DrainOrAbortAsync(hostDeadline).ConfigureAwait(false);
        }
        finally
        {
            if (started != 0)
            {
                _metrics.DrainDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, Telemetry.Endpoint);
            }
        }
    }

    private async Task DrainOrAbortAsync(CancellationToken hostDeadline)
    {
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
        _metrics.DrainAborted.Add(remaining, Telemetry.Endpoint);
        Volatile.Write(ref _abortingAtDeadline, 1);
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
        _acceptBackoff = backoff;
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

            // Read only while someone records durations or traces; otherwise no clock per connection.
            long acceptedAt = _metrics.Duration.Enabled || TransportMetrics.ActivitySource.HasListeners() ? Stopwatch.GetTimestamp() : 0;
            long active = Interlocked.Increment(ref _active);
            EndpointGeneration generation = Volatile.Read(ref _generation);
            if (active > generation.MaxConnections || Volatile.Read(ref _stopping) != 0 || !TryEnter(ref generation))
            {
                try
                {
                    Reject(connection, acceptedAt, generation, overLimit: active > generation.MaxConnections);
                }
                catch (Exception ex)
                {
                    TransportLog.RejectFailed(_logger, connection.ConnectionId, Name, ex);
                }

                OnConnectionEnded();
                continue;
            }

            _connections.TryAdd(connection, 0);
            Interlocked.Increment(ref _queued);
            var start = (Listener: this, Connection: connection, AcceptedAt: acceptedAt, Generation: generation);
            // On the I/O thread that runs this protocol anyway, when the transport has one (as nginx's workers serve what
            // they accept): no hop to the thread pool and back per connection. It never blocks under inline scheduling.
            if (connection is not Transport.Internal.IInlineStartConnection inline || !inline.TryStartInline(s_startBoxed, start))
            {
                ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Listener.RunConnectionAsync(state.Connection, state.AcceptedAt, state.Generation),
                    start, preferLocal: false);
            }
        }
    }

    /// <summary>Counts the connection in the generation it starts on; a reload may have just released the one read (read again).</summary>
    private bool TryEnter(ref EndpointGeneration generation)
    {
        if (generation.TryEnter())
        {
            return true;
        }

        generation = Volatile.Read(ref _generation);
        return generation.TryEnter();
    }

    /// <summary>Counts and logs a failed accept, then waits before the next; false when the endpoint is being unbound.</summary>
    private async Task<bool> BackOffAsync(RetryBackoff backoff, Exception error)
    {
        TimeSpan delay = backoff.Fail(out bool episodeStarted);
        string errorType = RetryBackoff.ErrorType(error);
        var tags = new System.Diagnostics.TagList(Telemetry.Endpoint) { { "error.type", errorType } };
        _metrics.AcceptErrors.Add(1, in tags);
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

    private void Reject(ConnectionContext connection, long acceptedAt, EndpointGeneration generation, bool overLimit)
    {
        long limit = generation.MaxConnections ?? 0;
        _metrics.Rejected.Add(1, generation.Telemetry.Endpoint);
        if (overLimit && acceptedAt != 0)
        {
            _metrics.Duration.Record(Stopwatch.GetElapsedTime(acceptedAt).TotalSeconds,
                generation.Telemetry.EndedWith(Transport.Internal.ConnectionEndReasons.MaxConcurrentConnectionsExceeded));
        }

        if (Interlocked.Exchange(ref _limitWarned, 1) == 0)
        {
            TransportLog.ConnectionLimitReached(_logger, Name, limit);
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            TransportLog.ConnectionRejected(_logger, connection.ConnectionId, Name, limit);
        }
        // Closed, not aborted (as Kestrel's connection limit does): the client sees the end of a connection it has made, not
        // a reset that can reach it before its connect has completed and fail that instead.
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

    private static readonly Action<object?> s_startBoxed = static state =>
    {
        var (listener, connection, acceptedAt, generation) = ((EndpointListener, ConnectionContext, long, EndpointGeneration))state!;
        _ = listener.RunConnectionAsync(connection, acceptedAt, generation);
    };

    private async Task RunConnectionAsync(ConnectionContext connection, long acceptedAt, EndpointGeneration generation)
    {
        // Queued (or started by the accept loop) and never awaited: every failure must end here, caught and logged, and the connection disposed.
        Interlocked.Decrement(ref _queued);
        bool debug = _logger.IsEnabled(LogLevel.Debug);
        string? endReason = null;

        // Every line logged while the protocol runs, the protocol's own included, carries the connection and endpoint
        // (as Kestrel's ConnectionId scope does). Skipped when nothing logs at all.
        // Both run code we did not write (logging providers, ActivityListeners): a throw there is logged, and the
        // connection is served without the scope or span rather than left undisposed on a thread-pool item.
        IDisposable? scope = null;
        Activity? connectionSpan = null;
        try
        {
            scope = _logger.IsEnabled(LogLevel.Critical) ? _logger.BeginScope(new ConnectionLogScope(connection.ConnectionId, Name)) : null;
            connectionSpan = StartSpans(connection, acceptedAt, generation.Telemetry);
        }
        catch (Exception ex)
        {
            TransportLog.TelemetryFailed(_logger, connection.ConnectionId, Name, ex);
        }

        using IDisposable? connectionScope = scope;
        try
        {
            if (debug)
            {
                TransportLog.ConnectionAccepted(_logger, connection.ConnectionId, Name, connection.RemoteEndPoint?.ToString());
            }

            // Unregistered when the protocol returns, before the connection is disposed below.
            await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable registration = _registry.Register(connection, Name).ConfigureAwait(false);
            await generation.Application(connection).ConfigureAwait(false);
            endReason = EndReasonWithoutException(connection);
        }
        catch (ProtocolViolationException ex)
        {
            // The client's bad input, not a fault of ours: no stack trace, no Error, one line and a count.
            endReason = ConnectionEndReasons.InvalidInput;
            TransportLog.InvalidInput(_logger, connection.ConnectionId, Name, generation.ProtocolName, ex.Message);
        }
        catch (Exception ex) when (ex is ConnectionResetException or ConnectionAbortedException or IOException)
        {
            endReason = EndReasonWithoutException(connection) ?? (ex is ConnectionResetException ? ConnectionEndReasons.ConnectionReset : ConnectionEndReasons.IOError);
            TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
        }
        catch (OperationCanceledException ex) when (connection.ConnectionClosed.IsCancellationRequested)
        {
            endReason = EndReasonWithoutException(connection);
            TransportLog.ConnectionEndedByTransport(_logger, connection.ConnectionId, Name, ex.Message);
        }
        catch (Exception ex)
        {
            endReason = ConnectionEndReasons.ProtocolError;
            TransportLog.ProtocolFailed(_logger, generation.ProtocolName, connection.ConnectionId, Name, ex);
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
            if (connection is TransportConnection { EndReason: { } known })
            {
                endReason = known;
            }

            try
            {
                RecordEnd(connection, acceptedAt, endReason, connectionSpan, generation.Telemetry);
            }
            catch (Exception ex)
            {
                // A MeterListener or ActivityListener callback runs inside Record and Stop: code we did not write.
                TransportLog.TelemetryFailed(_logger, connection.ConnectionId, Name, ex);
            }

            if (debug)
            {
                TransportLog.ConnectionClosed(_logger, connection.ConnectionId, Name);
            }
            OnConnectionEnded();
            generation.Leave();
        }
    }

    /// <summary>
    /// The accept span (accept to protocol start, ended here) and, when <c>Telemetry:ConnectionSpans</c> is on, the
    /// connection span it belongs to, current while the protocol runs so the protocol's own spans nest under it.
    /// </summary>
    private Activity? StartSpans(ConnectionContext connection, long acceptedAt, EndpointTelemetry telemetry)
    {
        ActivitySource source = TransportMetrics.ActivitySource;
        if (acceptedAt == 0 || !source.HasListeners())
        {
            return null;
        }

        DateTimeOffset acceptedUtc = DateTimeOffset.UtcNow - Stopwatch.GetElapsedTime(acceptedAt);
        Activity? connectionSpan = Volatile.Read(ref _generation).ConnectionSpans
            ? source.StartActivity("transport.connection", ActivityKind.Server, parentContext: default, telemetry.Endpoint, startTime: acceptedUtc)
            : null;
        connectionSpan?.SetTag("transport.connection.id", connection.ConnectionId);
        using (Activity? accept = source.StartActivity("transport.accept", ActivityKind.Internal, connectionSpan?.Context ?? default, telemetry.Endpoint, startTime: acceptedUtc))
        {
            accept?.SetTag("transport.connection.id", connection.ConnectionId);
        }

        return connectionSpan;
    }

    /// <summary>Why a connection ended when its protocol did not say: our deadline, the protocol's abort, or a reset.</summary>
    private string? EndReasonWithoutException(ConnectionContext connection)
    {
        if (connection is not TransportConnection transport)
        {
            return Volatile.Read(ref _abortingAtDeadline) != 0 ? ConnectionEndReasons.AppShutdownTimeout : null;
        }

        if (transport.AbortCalled)
        {
            return Volatile.Read(ref _abortingAtDeadline) != 0 ? ConnectionEndReasons.AppShutdownTimeout : ConnectionEndReasons.AbortedByApp;
        }

        return transport.ResetByPeer ? ConnectionEndReasons.ConnectionReset : null;
    }

    private void RecordEnd(ConnectionContext connection, long acceptedAt, string? endReason, Activity? connectionSpan, EndpointTelemetry telemetry)
    {
        if (connectionSpan is not null)
        {
            if (endReason is not null)
            {
                connectionSpan.SetTag("error.type", endReason);
                connectionSpan.SetStatus(ActivityStatusCode.Error);
            }

            connectionSpan.Dispose();
        }

        if (_metrics.Io.Enabled && connection is TransportConnection transport)
        {
            // Read after DisposeAsync: the transport's loops have ended, so the counts are final.
            long received = transport.BytesReceived;
            long sent = transport.BytesSent;
            if (received != 0)
            {
                _metrics.Io.Add(received, telemetry.Received);
            }

            if (sent != 0)
            {
                _metrics.Io.Add(sent, telemetry.Transmitted);
            }
        }

        // Last: tests (and anything that waits on the end of a connection) see the other measurements first.
        if (acceptedAt != 0 && _metrics.Duration.Enabled)
        {
            _metrics.Duration.Record(Stopwatch.GetElapsedTime(acceptedAt).TotalSeconds, telemetry.EndedWith(endReason));
        }
    }

    private void OnConnectionEnded()
    {
        long active = Interlocked.Decrement(ref _active);
        if (active < Volatile.Read(ref _generation).MaxConnections)
        {
            Volatile.Write(ref _limitWarned, 0);
        }

        if (active == 0 && Volatile.Read(ref _stopping) != 0)
        {
            _drained.TrySetResult();
        }
    }
}
