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
    /// One thread fewer than the CPUs, at least one: the kernel's network stack (softirq, half a CPU under the harness's
    /// loads), the collector and the thread pool need a CPU too, and an I/O thread that shares its CPU with them is
    /// preempted for a scheduler tick with the connections it serves waiting behind it. On the 2-core benchmark box one
    /// thread against two: 1.13× the ping-pong rate with a third of the p99, 1.16× keep-alive HTTP with a tenth, 0.88× stream.
    /// </summary>
    public static int DefaultThreadCount => Math.Max(1, Environment.ProcessorCount - 1);

    public EpollThread NextThread() => _threads.Length == 1 ? _threads[0] : _threads[Interlocked.Increment(ref _next) % (uint)_threads.Length];
}
