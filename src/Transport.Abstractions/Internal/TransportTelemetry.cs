using System.Net;
using System.Net.Sockets;

namespace Transport.Internal;

/// <summary>
/// The names every Transport instrument shares: one meter, one activity source, and the attributes of the OpenTelemetry
/// conventions that Kestrel's <c>kestrel.*</c> instruments use, so dashboards built for Kestrel port to ours.
/// </summary>
internal static class TransportTelemetry
{
    /// <summary>The meter (and activity source) of every Transport assembly.</summary>
    public const string Name = "Transport";

    /// <summary>
    /// The upper bucket boundaries (seconds) of connection durations, as Kestrel's <c>kestrel.connection.duration</c>
    /// advises: connections outlive requests, so the buckets reach five minutes.
    /// </summary>
    public static readonly IReadOnlyList<double> ConnectionDurationBuckets = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

    /// <summary>
    /// The attributes that say where a listener is (<c>network.transport</c>, <c>network.type</c>, <c>server.address</c>,
    /// <c>server.port</c>), computed once per listener; never the client's address.
    /// </summary>
    public static List<KeyValuePair<string, object?>> ServerTags(EndPoint? endpoint)
    {
        var tags = new List<KeyValuePair<string, object?>>(6);
        switch (endpoint)
        {
            case UdpEndPoint { Address: IPEndPoint ip }:
                AddIp(tags, "udp", ip);
                break;
            case UdpEndPoint udp:
                tags.Add(new("network.transport", "udp"));
                tags.Add(new("server.address", udp.Address.ToString()));
                break;
            case IPEndPoint ip:
                AddIp(tags, "tcp", ip);
                break;
            case UnixDomainSocketEndPoint unix:
                tags.Add(new("network.transport", "unix"));
                tags.Add(new("server.address", unix.ToString()));
                break;
            case MemoryEndPoint memory:
                tags.Add(new("network.transport", "memory"));
                tags.Add(new("server.address", memory.Name));
                break;
            case not null:
                tags.Add(new("server.address", endpoint.ToString()));
                break;
        }

        return tags;
    }

    private static void AddIp(List<KeyValuePair<string, object?>> tags, string transport, IPEndPoint ip)
    {
        tags.Add(new("network.transport", transport));
        tags.Add(new("network.type", ip.AddressFamily == AddressFamily.InterNetworkV6 && !ip.Address.IsIPv4MappedToIPv6 ? "ipv6" : "ipv4"));
        tags.Add(new("server.address", ip.Address.ToString()));

        // Boxed once here, not at every measurement.
        tags.Add(new("server.port", ip.Port));
    }
}

/// <summary>
/// The closed list of <c>error.type</c> values a connection can end with. Kestrel's names where Kestrel has the reason
/// (<c>connection_reset</c>, <c>aborted_by_app</c>, <c>app_shutdown_timeout</c>, <c>max_concurrent_connections_exceeded</c>,
/// <c>tls_handshake_failed</c>, <c>io_error</c>); ours for the rest. A connection that ends normally has none.
/// </summary>
internal static class ConnectionEndReasons
{
    /// <summary>The peer reset the connection (or, for UDP, became unreachable).</summary>
    public const string ConnectionReset = "connection_reset";

    /// <summary>The protocol (the application) aborted the connection.</summary>
    public const string AbortedByApp = "aborted_by_app";

    /// <summary>The connection was still open when the endpoint's shutdown deadline passed, and was aborted.</summary>
    public const string AppShutdownTimeout = "app_shutdown_timeout";

    /// <summary>The endpoint was at <c>MaxConcurrentConnections</c>: closed as soon as it was accepted.</summary>
    public const string MaxConcurrentConnectionsExceeded = "max_concurrent_connections_exceeded";

    /// <summary>
    /// The client broke the protocol: a <c>ProtocolViolationException</c> from the protocol, which includes the framing
    /// toolkit's <c>InvalidFrameException</c>.
    /// </summary>
    public const string InvalidInput = "invalid_input";

    /// <summary>The protocol threw any other exception: a fault in the server's code, logged at Error.</summary>
    public const string ProtocolError = "protocol_error";

    /// <summary>The transport failed with an I/O error other than a reset or abort.</summary>
    public const string IOError = "io_error";

    /// <summary>Reserved for <c>Limits:IdleTimeout</c>: no bytes in either direction for that long.</summary>
    public const string IdleTimeout = "idle_timeout";

    /// <summary><c>Limits:MaxConnectionLifetime</c>: the connection was open that long and was asked to close.</summary>
    public const string MaxConnectionLifetime = "max_connection_lifetime";

    /// <summary>Reserved for the TLS middleware: the handshake failed or timed out.</summary>
    public const string TlsHandshakeFailed = "tls_handshake_failed";
}
