using System.Diagnostics;
using System.Diagnostics.Metrics;
using Transport.Internal;

namespace Transport.Hosting.Internal;

/// <summary>
/// The server's instruments, in the <c>Transport</c> meter, shaped like Kestrel's <c>kestrel.*</c> (see docs/telemetry.md).
/// Every measurement takes a tag set an endpoint computed once at bind (<see cref="EndpointTelemetry"/>).
/// </summary>
internal sealed class TransportMetrics
{
    public const string MeterName = TransportTelemetry.Name;

    /// <summary>The activity source: the accept span and the opt-in connection span.</summary>
    public static readonly ActivitySource ActivitySource = new(TransportTelemetry.Name);

    private readonly Func<IEnumerable<EndpointListener>> _listeners;

    public TransportMetrics(IMeterFactory? meterFactory, Func<IEnumerable<EndpointListener>> listeners, TimeProvider? time = null)
    {
        _listeners = listeners;
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);

        // Observed from the endpoints' own counts: nothing per connection, and a listener that attaches late still
        // sees the connections that were already open.
        meter.CreateObservableUpDownCounter("transport.active_connections", ObserveActive, "{connection}",
            "Connections being served: accepted, handed to their protocol, not yet ended.");
        meter.CreateObservableUpDownCounter("transport.queued_connections", ObserveQueued, "{connection}",
            "Connections accepted and waiting for a thread to start their protocol.");
        Rejected = meter.CreateCounter<long>("transport.rejected_connections", "{connection}",
            "Connections closed at once because the endpoint was at its MaxConcurrentConnections.");
        Duration = meter.CreateHistogram("transport.connection.duration", "s",
            "How long connections lasted, from accept to close; error.type says why one ended abnormally.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TransportTelemetry.ConnectionDurationBuckets });
        Io = meter.CreateCounter<long>("transport.io", "By",
            "Bytes received from and sent to clients (network.io.direction), counted when each connection ends.");
        DrainDuration = meter.CreateHistogram("transport.drain.duration", "s",
            "How long an endpoint waited at shutdown for its open connections to end, up to its ShutdownTimeout.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TransportTelemetry.ConnectionDurationBuckets });
        DrainAborted = meter.CreateCounter<long>("transport.drain.aborted_connections", "{connection}",
            "Connections still open when the shutdown deadline passed, and aborted.");
        AcceptErrors = meter.CreateCounter<long>("transport.accept.errors", "{error}",
            "Exceptions from a transport's AcceptAsync; the endpoint retries with a growing delay. (The socket transport retries its own errors and counts them in transport.socket.accept.errors.)");
        TlsHandshakeFailures = meter.CreateCounter<long>("transport.tls.handshake_failures", "{connection}",
            "Connections closed because the client did not complete the TLS handshake (it failed, or the handshake timeout passed).");
        IdleTimeouts = meter.CreateCounter<long>("transport.connections.idle_timeouts", "{connection}",
            "Connections asked to close (and aborted after a grace period if still open) because no byte moved for Limits:IdleTimeout.");
        MaxConnectionLifetimes = meter.CreateCounter<long>("transport.connections.max_lifetime_reached", "{connection}",
            "Connections asked to close (and aborted after a grace period if still open) because they were open for Limits:MaxConnectionLifetime.");
        Tls = new Tls.TlsMetrics(meter, time ?? TimeProvider.System);
        ProxyProtocolRejected = meter.CreateCounter<long>("transport.proxy_protocol.rejected_connections", "{connection}",
            "Connections closed before the protocol because their PROXY protocol header was untrusted, missing, incomplete, too long, malformed, failed its checksum or timed out (error.type).");
        ConfigReloads = meter.CreateCounter<long>("transport.config.reloads", "{reload}",
            "Configuration reloads (a change under Transport, or SIGHUP), by transport.config.reload.result: applied, unchanged, invalid (ignored), rolled_back (an endpoint kept its running configuration).");
    }

    /// <summary>Tagged with <c>transport.config.reload.result</c> and <c>transport.config.reload.trigger</c> (<c>change</c>, <c>signal</c>).</summary>
    public Counter<long> ConfigReloads { get; }

    public void CountReload(string result, string trigger) =>
        ConfigReloads.Add(1, new KeyValuePair<string, object?>("transport.config.reload.result", result), new KeyValuePair<string, object?>("transport.config.reload.trigger", trigger));

    /// <summary>The TLS handshake and certificate instruments.</summary>
    public Tls.TlsMetrics Tls { get; }

    public Counter<long> Rejected { get; }

    /// <summary>Tagged with the endpoint's attributes and, when the connection ended abnormally, <c>error.type</c>.</summary>
    public Histogram<double> Duration { get; }

    /// <summary>Tagged with the endpoint's attributes and <c>network.io.direction</c> (<c>receive</c>, <c>transmit</c>).</summary>
    public Counter<long> Io { get; }

    public Histogram<double> DrainDuration { get; }

    public Counter<long> DrainAborted { get; }

    /// <summary>Tagged with the endpoint's attributes and <c>error.type</c> (the exception's type).</summary>
    public Counter<long> AcceptErrors { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> (<c>tls_handshake_failed</c>, <c>tls_handshake_timeout</c>).</summary>
    public Counter<long> TlsHandshakeFailures { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> = <c>idle_timeout</c>.</summary>
    public Counter<long> IdleTimeouts { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> = <c>max_connection_lifetime</c>.</summary>
    public Counter<long> MaxConnectionLifetimes { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> (<c>proxy_protocol_*</c>).</summary>
    public Counter<long> ProxyProtocolRejected { get; }

    public void CountProxyProtocolRejected(string endpoint, string errorType) =>
        ProxyProtocolRejected.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", errorType));

    public void CountMaxConnectionLifetime(string endpoint) =>
        MaxConnectionLifetimes.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", ConnectionEndReasons.MaxConnectionLifetime));

    public void CountIdleTimeout(string endpoint) =>
        IdleTimeouts.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", "idle_timeout"));

    public void CountTlsHandshakeFailure(string endpoint, string errorType) =>
        TlsHandshakeFailures.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", errorType));

    private IEnumerable<Measurement<long>> ObserveActive()
    {
        foreach (EndpointListener listener in _listeners())
        {
            yield return new Measurement<long>(listener.ServedConnections, listener.Telemetry.Endpoint);
        }
    }

    private IEnumerable<Measurement<long>> ObserveQueued()
    {
        foreach (EndpointListener listener in _listeners())
        {
            yield return new Measurement<long>(listener.QueuedConnections, listener.Telemetry.Endpoint);
        }
    }
}

/// <summary>
/// One endpoint's tag sets, computed once at bind so that measuring a connection allocates nothing: the endpoint's own
/// attributes, and the same with each <c>error.type</c> and each <c>network.io.direction</c>.
/// </summary>
internal sealed class EndpointTelemetry
{
    private static readonly string[] s_endReasons =
    [
        ConnectionEndReasons.ConnectionReset, ConnectionEndReasons.AbortedByApp, ConnectionEndReasons.AppShutdownTimeout,
        ConnectionEndReasons.MaxConcurrentConnectionsExceeded, ConnectionEndReasons.InvalidInput,
        ConnectionEndReasons.ProtocolError, ConnectionEndReasons.IOError, ConnectionEndReasons.IdleTimeout,
        ConnectionEndReasons.TlsHandshakeFailed, ConnectionEndReasons.MaxConnectionLifetime,
    ];

    private readonly KeyValuePair<string, object?>[][] _ended;

    public EndpointTelemetry(string name, string protocolName, System.Net.EndPoint? endpoint)
    {
        List<KeyValuePair<string, object?>> tags = TransportTelemetry.ServerTags(endpoint);
        tags.Add(new("network.protocol.name", protocolName));
        tags.Add(new("transport.endpoint", name));
        Endpoint = [.. tags];
        Received = [.. tags, new("network.io.direction", "receive")];
        Transmitted = [.. tags, new("network.io.direction", "transmit")];
        _ended = [.. s_endReasons.Select(reason => (KeyValuePair<string, object?>[])[.. tags, new("error.type", reason)])];
    }

    /// <summary>The endpoint's attributes.</summary>
    public KeyValuePair<string, object?>[] Endpoint { get; }

    public KeyValuePair<string, object?>[] Received { get; }

    public KeyValuePair<string, object?>[] Transmitted { get; }

    /// <summary>The endpoint's attributes with <c>error.type</c> = <paramref name="reason"/>, or without when null.</summary>
    public KeyValuePair<string, object?>[] EndedWith(string? reason)
    {
        if (reason is null)
        {
            return Endpoint;
        }

        int known = Array.IndexOf(s_endReasons, reason);

        // A reason outside the list (a middleware's own) still gets counted, at the cost of one array.
        return known >= 0 ? _ended[known] : [.. Endpoint, new("error.type", reason)];
    }
}
