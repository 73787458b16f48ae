using System.Diagnostics.Metrics;

namespace Transport.Hosting.Internal;

/// <summary>The server's instruments, in the <c>Transport</c> meter.</summary>
internal sealed class TransportMetrics
{
    public const string MeterName = "Transport";

    public TransportMetrics(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Active = meter.CreateUpDownCounter<long>("transport.connections.active", "{connection}", "Connections being served.");
        Accepted = meter.CreateCounter<long>("transport.connections.accepted", "{connection}", "Connections accepted and handed to a protocol.");
        Rejected = meter.CreateCounter<long>("transport.connections.rejected", "{connection}", "Connections closed at once because the endpoint was at its limit.");
        Aborted = meter.CreateCounter<long>("transport.connections.aborted_at_shutdown", "{connection}", "Connections aborted when the shutdown deadline passed.");
        ProtocolErrors = meter.CreateCounter<long>("transport.protocol.errors", "{error}", "Connections ended by an exception from their protocol.");
        InvalidInput = meter.CreateCounter<long>("transport.connections.invalid_input", "{connection}",
            "Connections closed because the client broke the protocol (a ProtocolViolationException from the protocol).");

        AcceptErrors = meter.CreateCounter<long>("transport.accept.errors", "{error}",
            "Exceptions from a transport's AcceptAsync; the endpoint retries with a growing delay. (The socket transport retries its own errors and counts them in the Transport.Sockets meter.)");
        TlsHandshakeFailures = meter.CreateCounter<long>("transport.tls.handshake_failures", "{connection}",
            "Connections closed because the client did not complete the TLS handshake (it failed, or the handshake timeout passed).");
        IdleTimeouts = meter.CreateCounter<long>("transport.connections.idle_timeouts", "{connection}",
            "Connections asked to close (and aborted after a grace period if still open) because no byte moved for Limits:IdleTimeout.");
    }

    public UpDownCounter<long> Active { get; }

    public Counter<long> Accepted { get; }

    public Counter<long> Rejected { get; }

    public Counter<long> Aborted { get; }

    public Counter<long> ProtocolErrors { get; }

    public Counter<long> InvalidInput { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> (the exception's type).</summary>
    public Counter<long> AcceptErrors { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> (<c>tls_handshake_failed</c>, <c>tls_handshake_timeout</c>).</summary>
    public Counter<long> TlsHandshakeFailures { get; }

    /// <summary>Tagged with <c>transport.endpoint</c> and <c>error.type</c> = <c>idle_timeout</c>.</summary>
    public Counter<long> IdleTimeouts { get; }

    public void CountIdleTimeout(string endpoint) =>
        IdleTimeouts.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", "idle_timeout"));

    public void CountTlsHandshakeFailure(string endpoint, string errorType) =>
        TlsHandshakeFailures.Add(1, new KeyValuePair<string, object?>("transport.endpoint", endpoint), new KeyValuePair<string, object?>("error.type", errorType));
}
