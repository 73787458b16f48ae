using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

/// <summary>
/// Gives memory back to the operating system once traffic has gone quiet: at each trim of the buffer pool it
/// decides whether one aggressive collection is worth its pause, and runs it.
/// </summary>
/// <remarks>
/// An idle .NET process never collects, and a normal collection keeps freed regions committed for reuse; only
/// <see cref="GCCollectionMode.Aggressive"/> decommits them at once (measured: 250 MiB of freed buffers stayed
/// resident after <c>GC.Collect()</c> and went after an aggressive one). What is there to give back is either
/// what the pool released, or what the heap grew by while traffic was busy (a store's replaced values, say:
/// garbage promoted to generation 2, which a quiet process would keep forever). It is worth a pause only when it
/// is a sizeable part of the heap, so a large live heap is not compacted for a few megabytes.
/// </remarks>
internal sealed class IdleMemoryCollector
{
    /// <summary>Less than this is not worth a full blocking collection, whatever the heap's size.</summary>
    public const long MinimumBytes = 4 * 1024 * 1024;

    private readonly ILogger _logger;
    private readonly Func<long> _heapBytes;
    private readonly Action _collect;
    private long _heapAfterCollect;
    private long _released;
    private bool _busySinceCollect;

    public IdleMemoryCollector(ILogger logger)
        : this(logger, static () => GC.GetTotalMemory(forceFullCollection: false),
            static () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true))
    {
    }

    /// <summary>For tests: the heap's size and the collection itself are injected.</summary>
    public IdleMemoryCollector(ILogger logger, Func<long> heapBytes, Action collect)
    {
        _logger = logger;
        _heapBytes = heapBytes;
        _collect = collect;
        _heapAfterCollect = heapBytes();
    }

    /// <summary>The collections run so far.</summary>
    public int Collections { get; private set; }

    /// <summary>
    /// Called once per trim period (never concurrently) with whether the period was quiet and the bytes the pool
    /// released in it. Collects when the period was quiet and enough can come back.
    /// </summary>
    /// <returns>Whether it collected.</returns>
    public bool OnTrimmed(bool quiet, long releasedBytes)
    {
        _released += releasedBytes;
        if (!quiet)
        {
            // Never while busy: the pause would meet traffic, and the memory is still in use or soon reused.
            _busySinceCollect = true;
            return false;
        }

        long heap = _heapBytes();
        long grown = _busySinceCollect ? heap - _heapAfterCollect : 0;
        long reclaimable = Math.Max(_released, grown);
        _busySinceCollect = false;
        if (reclaimable < Math.Max(MinimumBytes, heap / 8))
        {
            return false;
        }

        long started = TimeProvider.System.GetTimestamp();
        _collect();
        TimeSpan pause = TimeProvider.System.GetElapsedTime(started);
        _heapAfterCollect = _heapBytes();
        _released = 0;
        Collections++;
        SocketsLog.MemoryReturned(_logger, heap / (1024 * 1024), _heapAfterCollect / (1024 * 1024), pause.TotalMilliseconds);
        return true;
    }
}
