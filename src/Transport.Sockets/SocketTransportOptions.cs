namespace Transport.Sockets;

/// <summary>
/// Options of the TCP and Unix domain socket transport.
/// </summary>
public sealed class SocketTransportOptions
{
    /// <summary>Whether TCP connections disable Nagle's algorithm, so small writes go out at once.</summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool NoDelay { get; set; } = true;

    /// <summary>The listen backlog: connections the kernel completes before they are accepted.</summary>
    /// <remarks>Defaults to 512.</remarks>
    public int Backlog { get; set; } = 512;

    /// <summary>
    /// Whether a connection waits until data arrives before it takes a receive buffer from the pool, so
    /// idle connections hold no buffer memory.
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool WaitForDataBeforeAllocatingBuffer { get; set; } = true;

    /// <summary>
    /// Whether the protocol's code runs on the thread that completed the socket operation (no thread-pool
    /// hop per read or flush). Turn it off only for protocols that block their thread.
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool InlineScheduling { get; set; } = true;

    /// <summary>
    /// How long a closing connection keeps reading and discarding what the peer still sends, so that the
    /// close does not reset the peer before it has read the last bytes sent to it. The socket is closed as
    /// soon as the peer closes its side, or when this time is up.
    /// </summary>
    /// <remarks>Defaults to 5 seconds.</remarks>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
