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
    /// <remarks>
    /// With it, what a protocol flushes while it handles a received batch is sent once that handling yields (its next
    /// read that waits, or any <see langword="await"/> that does not complete at once): one send for all of it, on the
    /// same thread, without waiting on a clock.
    /// Defaults to <see langword="true"/>.
    /// </remarks>
    public bool InlineScheduling { get; set; } = true;

    /// <summary>
    /// How long a closing connection keeps reading and discarding what the peer still sends, so that the
    /// close does not reset the peer before it has read the last bytes sent to it. The socket is closed as
    /// soon as the peer closes its side, or when this time is up.
    /// </summary>
    /// <remarks>Defaults to 5 seconds.</remarks>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often the connections' buffer pool gives back memory that stayed unused for a whole interval. After a
    /// burst, the pool's memory is back with the operating system within about two intervals once traffic is quiet.
    /// </summary>
    /// <remarks>Defaults to 10 seconds. Must be positive.</remarks>
    public TimeSpan MemoryPoolTrimInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether, once traffic has gone quiet after a busy period and much memory can come back (what the buffer pool
    /// released, or what the heap grew by), the transport runs one aggressive garbage collection, which returns the
    /// freed memory to the operating system. Without it an idle process keeps its peak memory. Turn it off if even a
    /// rare pause while idle matters more than memory, or if the application manages collections itself.
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/>.</remarks>
    public bool ReturnMemoryWhenIdle { get; set; } = true;

    /// <summary>
    /// Whether .NET's socket completions run on its epoll threads instead of being queued to the thread pool
    /// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>). With <see cref="InlineScheduling"/>, the protocol then
    /// runs on those threads too: no thread-pool hop per message, the fastest setting for protocols that never block,
    /// and a hazard for one that does (it stalls every socket served by that thread).
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="false"/>. It is a switch of the whole process that .NET reads once, at the first socket
    /// operation: the transport sets it when it is created, which in a host is before any socket is opened. A process
    /// that already used a socket (or sets the environment variable itself) keeps what it had.
    /// </remarks>
    public bool InlineCompletions { get; set; }

    /// <summary>
    /// Whether accepted connections are served by the transport's own I/O threads (on Linux, x64 and Arm64): epoll threads
    /// that make each receive and send as a non-blocking call and, when one has to wait, complete it on the thread that
    /// saw the socket's event, with no hop to the thread pool. With <see cref="InlineScheduling"/> the protocol runs on
    /// those threads too, as with <see cref="InlineCompletions"/>, but for this transport's connections only and without
    /// a switch of the whole process. Elsewhere, and for connections this transport makes as a client, .NET's socket
    /// engine serves them.
    /// </summary>
    /// <remarks>
    /// Defaults to <see langword="true"/>. A protocol that blocks its thread must turn off <see cref="InlineScheduling"/>
    /// (it then runs on the thread pool and only the socket calls run on the I/O threads). The threads are started when the
    /// first listener binds, shared by every socket transport of the process; <see cref="IoThreadCount"/> sets how many.
    /// </remarks>
    public bool PreferTransportIoThreads { get; set; } = true;

    /// <summary>
    /// How many epoll threads .NET's sockets use (<c>DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT</c>); 0 leaves the runtime's
    /// choice: one per CPU with <see cref="InlineCompletions"/>, otherwise one per 30 CPUs. With inline completions
    /// these threads run the protocols too, so fewer of them leave CPUs to the rest of the machine: on a box shared
    /// with other busy processes, one per CPU get preempted, and the connections they serve wait a scheduler tick
    /// (a p99 near 4 ms); fewer threads shorten that tail and cap the throughput at what they can run.
    /// </summary>
    /// <remarks>
    /// Defaults to 0. From 0 to 256. A switch of the whole process that .NET reads once, at the first socket operation,
    /// like <see cref="InlineCompletions"/>: the transport sets it when it is created, unless the environment variable
    /// is already set. It also sets how many of the transport's own I/O threads run (<see cref="PreferTransportIoThreads"/>;
    /// 0: one per CPU), a number the first listener of the process fixes.
    /// </remarks>
    public int IoThreadCount { get; set; }
}
