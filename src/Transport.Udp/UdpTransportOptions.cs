namespace Transport.Udp;

/// <summary>
/// Options of the UDP transport.
/// </summary>
public sealed class UdpTransportOptions
{
    /// <summary>
    /// The largest datagram sent or received, in bytes. A flush of more fails with an exception; a larger
    /// datagram received is dropped and counted, never delivered cut short.
    /// </summary>
    /// <remarks>Defaults to 65507, the largest UDP payload over IPv4.</remarks>
    public int MaxDatagramSize { get; set; } = 65507;

    /// <summary>The most peers (sessions) an endpoint serves at once; datagrams from further peers are dropped and counted.</summary>
    /// <remarks>Defaults to 1000.</remarks>
    public int MaxSessions { get; set; } = 1000;

    /// <summary>Received datagrams a session holds before the protocol reads them; more are dropped and counted.</summary>
    /// <remarks>Defaults to 64.</remarks>
    public int MaxQueuedDatagrams { get; set; } = 64;

    /// <summary>A session that neither receives nor sends for this long ends: its protocol sees end of input.</summary>
    /// <remarks>Defaults to 60 seconds.</remarks>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The socket's kernel receive buffer (<c>SO_RCVBUF</c>), which absorbs bursts while the protocol is busy.</summary>
    /// <remarks>Defaults to 4 MiB (the kernel may cap it at <c>net.core.rmem_max</c>).</remarks>
    public int SocketReceiveBufferSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// Whether the protocol's code runs on the receiving thread (no thread-pool hop per datagram). Turn it off only
    /// for protocols that block their thread.
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool InlineScheduling { get; set; } = true;

    /// <summary>
    /// Whether the endpoint's traffic takes part in giving memory back to the operating system once the process is
    /// quiet: after a burst of datagrams or sessions has ended and every transport in the process has been quiet for a
    /// period, one aggressive collection returns what the burst left (its ended sessions and buffers).
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool ReturnMemoryWhenIdle { get; set; } = true;
}
