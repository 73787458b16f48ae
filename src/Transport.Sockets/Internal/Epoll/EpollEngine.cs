using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal.Epoll;

/// <summary>
/// The transport's own I/O threads, shared by every socket transport of the process and started on the first
/// connection that uses them; connections are spread over them in turn.
/// </summary>
internal sealed class EpollEngine
{
    private static readonly Lock s_lock = new();
    private static EpollEngine? s_shared;

    private readonly EpollThread[] _threads;
    private uint _next;

    private EpollEngine(int threadCount, ILogger logger)
    {
        _threads = new EpollThread[threadCount];
        for (int i = 0; i < threadCount; i++)
        {
            _threads[i] = new EpollThread(i, logger);
        }
    }

    /// <summary>
    /// The process's engine, made on first use with <paramref name="threadCount"/> threads (0: <see cref="DefaultThreadCount"/>);
    /// later calls get the same engine whatever they ask for, as the runtime's own socket threads are one set per process.
    /// </summary>
    public static EpollEngine GetShared(int threadCount, ILogger logger)
    {
        EpollEngine? engine = Volatile.Read(ref s_shared);
        if (engine is not null)
        {
            return engine;
        }

        lock (s_lock)
        {
            return s_shared ??= new EpollEngine(threadCount > 0 ? threadCount : DefaultThreadCount, logger);
        }
    }

    /// <summary>
    /// One per CPU, as Kestrel's I/O queues, Netty's event loops and nginx's workers. Measured on the 2-core box against one
    /// thread: the harness (a C load generator in its own process) gave one thread 1.13× the ping-pong rate and a third of
    /// the p99, the in-process benchmark (a .NET client in the same process) gave two threads 1.2× against 0.9× Kestrel's
    /// ping-pong. No single answer for a box that shares its CPUs with its load; one with CPUs to itself uses them all.
    /// </summary>
    public static int DefaultThreadCount => Environment.ProcessorCount;

    public EpollThread NextThread() => _threads.Length == 1 ? _threads[0] : _threads[Interlocked.Increment(ref _next) % (uint)_threads.Length];
}
