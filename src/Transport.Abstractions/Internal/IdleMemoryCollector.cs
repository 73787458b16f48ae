using Microsoft.Extensions.Logging;

namespace Transport.Internal;

/// <summary>
/// Gives memory back to the operating system once traffic has gone quiet in the whole process: each source of
/// traffic (the socket transport's buffer pool, each UDP endpoint) reports once per period whether it was quiet and
/// what it released, and the collector decides whether one aggressive collection is worth its pause, and runs it.
/// </summary>
/// <remarks>
/// An idle .NET process never collects, and a normal collection keeps freed regions committed for reuse; only
/// <see cref="GCCollectionMode.Aggressive"/> decommits them at once (measured: 250 MiB of freed buffers stayed
/// resident after <c>GC.Collect()</c> and went after an aggressive one). What is there to give back is either
/// what a pool released, or what the heap grew by while traffic was busy (a store's replaced values, the sessions
/// of a UDP burst: garbage promoted to generation 2, which a quiet process would keep forever). It is worth a
/// pause only when it is a sizeable part of the heap, so a large live heap is not compacted for a few megabytes.
/// One instance serves the process (<see cref="Shared"/>): a collection pauses every thread, so it waits until
/// every source's last period was quiet, not just the one reporting.
/// </remarks>
internal sealed partial class IdleMemoryCollector
{
    /// <summary>Less than this is not worth a full blocking collection, whatever the heap's size.</summary>
    public const long MinimumBytes = 4 * 1024 * 1024;

    private readonly Func<long> _heapBytes;
    private readonly Action _collect;
    private readonly Lock _lock = new();
    private readonly List<Source> _sources = [];
    private long _heapAfterCollect;
    private long _released;
    private bool _busySinceCollect;
    private bool _collecting;

    /// <summary>For tests: the heap's size and the collection itself are injected.</summary>
    public IdleMemoryCollector(Func<long> heapBytes, Action collect)
    {
        _heapBytes = heapBytes;
        _collect = collect;
        _heapAfterCollect = heapBytes();
    }

    /// <summary>The process's collector.</summary>
    public static IdleMemoryCollector Shared { get; } = new(
        static () => GC.GetTotalMemory(forceFullCollection: false),
        static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true));

    /// <summary>The collections run so far.</summary>
    public int Collections { get; private set; }

    /// <summary>Registers a source of traffic; it reports through the returned handle until disposed.</summary>
    /// <param name="logger">Where a collection this source's report triggers is logged.</param>
    public Source AddSource(ILogger logger)
    {
        var source = new Source(this, logger);
        lock (_lock)
        {
            _sources.Add(source);
        }

        return source;
    }

    private bool OnPeriod(Source reporter, bool quiet, long releasedBytes)
    {
        long heap;
        lock (_lock)
        {
            if (reporter.Removed)
            {
                return false;
            }

            _released += releasedBytes;
            reporter.Quiet = quiet;
            if (!quiet)
            {
                // Never while busy: the pause would meet traffic, and the memory is still in use or soon reused.
                _busySinceCollect = true;
                return false;
            }

            foreach (Source source in _sources)
            {
                if (!source.Quiet)
                {
                    // Another source's last period was busy: its traffic would meet the pause.
                    return false;
                }
            }

            heap = _heapBytes();
            long grown = _busySinceCollect ? heap - _heapAfterCollect : 0;
            long reclaimable = Math.Max(_released, grown);
            _busySinceCollect = false;
            if (_collecting || reclaimable < Math.Max(MinimumBytes, heap / 8))
            {
                return false;
            }

            // Another source's quiet report during the pause must not collect again.
            _collecting = true;
        }

        TimeSpan pause;
        long after;
        try
        {
            long started = TimeProvider.System.GetTimestamp();
            _collect();
            pause = TimeProvider.System.GetElapsedTime(started);
            after = _heapBytes();
            lock (_lock)
            {
                _heapAfterCollect = after;
                _released = 0;
                Collections++;
            }
        }
        finally
        {
            lock (_lock)
            {
                _collecting = false;
            }
        }

        MemoryReturned(reporter.Logger, heap / (1024 * 1024), after / (1024 * 1024), pause.TotalMilliseconds);
        return true;
    }

    private void Remove(Source source)
    {
        lock (_lock)
        {
            source.Removed = true;
            _sources.Remove(source);
        }
    }

    [LoggerMessage(121, LogLevel.Debug, "Traffic went quiet: an aggressive collection took the managed heap from {BeforeMiB} MiB to {AfterMiB} MiB and returned the freed memory to the OS ({PauseMs:F0} ms).")]
    private static partial void MemoryReturned(ILogger logger, long beforeMiB, long afterMiB, double pauseMs);

    /// <summary>One source of traffic's handle: it reports each of its periods here.</summary>
    internal sealed class Source : IDisposable
    {
        private readonly IdleMemoryCollector _owner;

        internal Source(IdleMemoryCollector owner, ILogger logger)
        {
            _owner = owner;
            Logger = logger;
        }

        internal ILogger Logger { get; }

        /// <summary>Whether this source's last period was quiet (a new source has seen no traffic yet).</summary>
        internal bool Quiet { get; set; } = true;

        internal bool Removed { get; set; }

        /// <summary>
        /// Called once per period of this source (never concurrently for one source) with whether the period was
        /// quiet and the bytes the source released in it. Collects when every source is quiet and enough can come back.
        /// </summary>
        /// <returns>Whether it collected.</returns>
        public bool OnTrimmed(bool quiet, long releasedBytes) => _owner.OnPeriod(this, quiet, releasedBytes);

        /// <summary>Stops reporting: the collector no longer waits for this source.</summary>
        public void Dispose() => _owner.Remove(this);
    }
}
