namespace Transport;

/// <summary>
/// Per-listener limits a host passes to a transport when it binds an endpoint.
/// </summary>
public sealed class TransportListenOptions
{
    /// <summary>The default value of <see cref="MaxReadBufferSize"/>: 1 MiB.</summary>
    public const long DefaultMaxReadBufferSize = 1024 * 1024;

    /// <summary>The default value of <see cref="MaxWriteBufferSize"/>: 64 KiB.</summary>
    public const long DefaultMaxWriteBufferSize = 64 * 1024;

    /// <summary>
    /// The most bytes received from a peer and not yet consumed by the protocol. When reached, the
    /// transport stops reading from that peer until the protocol catches up (TCP flow control pushes
    /// back on the sender).
    /// </summary>
    /// <remarks>Defaults to 1 MiB. 0 means no limit.</remarks>
    public long MaxReadBufferSize { get; set; } = DefaultMaxReadBufferSize;

    /// <summary>
    /// The most bytes written by the protocol and not yet sent to the peer. When reached, the
    /// protocol's <c>FlushAsync</c> waits until the peer has taken enough.
    /// </summary>
    /// <remarks>Defaults to 64 KiB. 0 means no limit.</remarks>
    public long MaxWriteBufferSize { get; set; } = DefaultMaxWriteBufferSize;

    /// <summary>
    /// Whether to set <c>SO_REUSEPORT</c> on the socket before binding, so that several processes (or listeners) can
    /// bind the same TCP or UDP address and the kernel spreads connections and peers among them. Linux only; ignored by
    /// transports without ports (Unix sockets, memory) and by sockets taken over rather than bound.
    /// </summary>
    /// <remarks>Defaults to false.</remarks>
    public bool ReusePort { get; set; }

    /// <summary>The PROXY protocol policy of a datagram endpoint, applied by the UDP transport per datagram; null for none.</summary>
    internal Internal.DatagramProxyProtocol? DatagramProxyProtocol { get; set; }
}
