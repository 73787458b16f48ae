using System.Buffers;
using Microsoft.Extensions.Logging;
using Transport.Internal;
using Microsoft.Extensions.Logging.Abstractions;

namespace Transport.Sockets.Internal;

/// <summary>
/// The pipes' memory: fixed-size blocks that are kept after use and handed out again, so a busy connection
/// allocates nothing per message however many blocks are buffered at once; and memory that goes back to the
/// operating system once a burst is over.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="ArrayPool{T}.Shared"/> keeps only a few dozen arrays per size and core; under backpressure
/// (a slow peer, typical of Unix sockets with their small kernel buffers) the pipes hold hundreds of blocks,
/// so the shared pool ran dry on rent and dropped arrays on return: about 700 B allocated per 4 KiB message.
/// This pool instead grows to what the connections need at once.
/// </para>
/// <para>
/// Giving memory back takes three things, each measured (docs/architecture.md, "Memory"). Blocks are cut from
/// 128 KiB slabs, so what the pool frees is a whole large object, not 4 KiB scattered among live ones. The slabs
/// are ordinary large-object-heap arrays, not pinned ones: the pinned object heap is never compacted, so a few
/// live blocks kept all of a burst's pages resident; the large object heap is compacted when asked. And once
/// traffic is quiet, <see cref="IdleMemoryCollector"/> may run one aggressive collection, the only kind that
/// decommits the freed memory at once (a normal one keeps it for reuse, and an idle process never collects at all).
/// </para>
/// </remarks>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    /// <summary>The size of every block: a page, as Kestrel's pool, so a receive or send never straddles more pages than it needs.</summary>
    public const int BlockSize = 4096;

    /// <summary>
    /// The unit of allocation and release: 32 blocks, above the 85,000 bytes that put an array on the large object
    /// heap (allocated straight into the oldest generation, never copied by ordinary collections).
    /// </summary>
    public const int SlabSize = 128 * 1024;

    private const int BlocksPerSlab = SlabSize / BlockSize;

    /// <summary>The default trim period: blocks unused for a whole period are released at its end.</summary>
    public static readonly TimeSpan DefaultTrimPeriod = TimeSpan.FromSeconds(10);

    private readonly object _lock = new();
    private readonly ILogger _logger;
    private readonly IdleMemoryCollector.Source? _collector;
    private readonly ITimer _trimTimer;
    private Block[] _free = new Block[64];
    private int _count;
    private int _lowWater;
    private int _rents;
    private int _slabs;
    private long _released;
    private long _releasedAtLastTrim;
    private bool _disposed;

    public BlockMemoryPool()
        : this(TimeProvider.System, DefaultTrimPeriod, NullLogger.Instance, collector: null)
    {
    }

    /// <param name="time">Drives the trim timer.</param>
    /// <param name="trimPeriod">How often unused blocks are released.</param>
    /// <param name="logger">The transport's logger.</param>
    /// <param name="collector">Told after every trim (the pool is one of its sources), to give the memory back to the OS; null to leave that to the GC.</param>
    public BlockMemoryPool(TimeProvider time, TimeSpan trimPeriod, ILogger logger, IdleMemoryCollector? collector)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(trimPeriod, TimeSpan.Zero);
        _logger = logger;
        _collector = collector?.AddSource(logger);

        // The timer (rooted while scheduled) holds the pool only weakly, so an unreferenced pool (e.g. a test's
        // transport) is collected, and its timer then stops itself and leaves the collector.
        var state = new TrimState(new WeakReference<BlockMemoryPool>(this), _collector);
        _trimTimer = time.CreateTimer(static state => Trim((TrimState)state!), state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        state.Timer = _trimTimer;
        _trimTimer.Change(trimPeriod, trimPeriod);
    }

    /// <inheritdoc />
    public override int MaxBufferSize => BlockSize;

    /// <summary>The blocks kept for reuse (for tests and diagnostics).</summary>
    internal int FreeCount => Volatile.Read(ref _count);

    /// <summary>The slabs the pool holds, in use or not, including those waiting for their last blocks to come back.</summary>
    internal int SlabCount => Volatile.Read(ref _slabs);

    /// <summary>The bytes of slabs released so far (for tests and diagnostics).</summary>
    internal long ReleasedBytes
    {
        get
        {
            lock (_lock)
            {
                return _released;
            }
        }
    }

    /// <inheritdoc />
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        lock (_lock)
        {
            _rents++;
            if (_count > 0)
            {
                Block block = _free[--_count];
                _free[_count] = null!;
                if (_count < _lowWater)
                {
                    _lowWater = _count;
                }

                return block;
            }

            _lowWater = 0;
        }

        return RentFromNewSlab();
    }

    private Block RentFromNewSlab()
    {
        // Allocated outside the lock: other connections keep renting and returning meanwhile.
        var slab = new Slab(this);
        lock (_lock)
        {
            _slabs++;
            EnsureCapacity(_count + BlocksPerSlab - 1);
            for (int i = BlocksPerSlab - 1; i > 0; i--)
            {
                _free[_count++] = slab.Blocks[i];
            }
        }

        return slab.Blocks[0];
    }

    private void Return(Block block)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            if (block.Retired)
            {
                // Its slab is being released: the block does not go back on the free list, and the last one
                // back frees the slab.
                if (--block.Slab.Outstanding == 0)
                {
                    _slabs--;
                    _released += SlabSize;
                }

                return;
            }

            if (_count == _free.Length)
            {
                Array.Resize(ref _free, _free.Length * 2);
            }

            _free[_count++] = block;
        }
    }

    private void EnsureCapacity(int count)
    {
        if (count > _free.Length)
        {
            Array.Resize(ref _free, Math.Max(count, _free.Length * 2));
        }
    }

    private static void Trim(TrimState state)
    {
        if (state.Pool.TryGetTarget(out BlockMemoryPool? pool))
        {
            try
            {
                pool.TrimUnused();
            }
            catch (Exception ex)
            {
                // A timer callback must not end the process; the next period tries again.
                SocketsLog.MemoryPoolTrimFailed(pool._logger, ex);
            }
        }
        else
        {
            state.Timer?.Dispose();
            state.Collector?.Dispose();
        }
    }

    /// <summary>
    /// Releases blocks that were never rented during the last period (the low-water mark of the free list), a
    /// slab at a time: all of them after a quiet period (the pool rented less than a slab), half of them while
    /// connections are busy, so steady traffic keeps its working set. Then, if the period was quiet and much was
    /// released, asks the GC to give the memory back to the operating system.
    /// </summary>
    internal void TrimUnused()
    {
        bool quiet;
        long released;
        int held;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            // Idle (no rent at all): everything unused goes, down to the last partly used slab. A trickle (less
            // than a slab's worth of rents): the whole slabs it did not need. Busy: half of those.
            quiet = _rents < BlocksPerSlab;
            int unused = _lowWater;
            int slabsToRelease = _rents == 0 ? (unused + BlocksPerSlab - 1) / BlocksPerSlab
                : quiet ? unused / BlocksPerSlab
                : unused / 2 / BlocksPerSlab;
            if (slabsToRelease > 0)
            {
                ReleaseSlabs(slabsToRelease);
            }

            _lowWater = _count;
            _rents = 0;
            released = _released - _releasedAtLastTrim;
            _releasedAtLastTrim = _released;
            held = _slabs;
        }

        if (released > 0)
        {
            SocketsLog.MemoryPoolTrimmed(_logger, released / 1024, (long)held * SlabSize / 1024);
        }

        _collector?.OnTrimmed(quiet, released);
    }

    /// <summary>
    /// Takes <paramref name="wanted"/> slabs off the free list, the emptiest first: a slab with no block out is freed
    /// now; one with blocks still rented is retired, so it hands out nothing more and goes when they come back.
    /// </summary>
    private void ReleaseSlabs(int wanted)
    {
        // Count each slab's blocks on the free list; slabs with none there cannot be chosen and are not listed.
        var candidates = new List<Slab>();
        for (int i = 0; i < _count; i++)
        {
            Slab slab = _free[i].Slab;
            if (slab.FreeOnList++ == 0)
            {
                candidates.Add(slab);
            }
        }

        if (candidates.Count > wanted)
        {
            candidates.Sort(static (a, b) => b.FreeOnList.CompareTo(a.FreeOnList));
        }

        for (int i = 0; i < candidates.Count; i++)
        {
            Slab slab = candidates[i];
            if (i < wanted)
            {
                slab.Retire(BlocksPerSlab - slab.FreeOnList);
                if (slab.Outstanding == 0)
                {
                    _slabs--;
                    _released += SlabSize;
                }
            }

            slab.FreeOnList = 0;
        }

        // Drop the retired slabs' blocks from the free list, keeping the order of the rest: the top of the stack
        // is what was used last, still warm in the caches.
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            Block block = _free[i];
            if (!block.Retired)
            {
                _free[kept++] = block;
            }
        }

        Array.Clear(_free, kept, _count - kept);
        _count = kept;
        if (_free.Length > 64 && _count < _free.Length / 4)
        {
            Array.Resize(ref _free, Math.Max(64, _free.Length / 2));
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        _trimTimer.Dispose();
        _collector?.Dispose();
        lock (_lock)
        {
            _disposed = true;
            Array.Clear(_free, 0, _count);
            _count = 0;
        }
    }

    private sealed class TrimState(WeakReference<BlockMemoryPool> pool, IdleMemoryCollector.Source? collector)
    {
        public WeakReference<BlockMemoryPool> Pool { get; } = pool;

        public IdleMemoryCollector.Source? Collector { get; } = collector;

        public ITimer? Timer { get; set; }
    }

    /// <summary>One large array cut into blocks, allocated and freed whole.</summary>
    private sealed class Slab
    {
        public Slab(BlockMemoryPool pool)
        {
            // Not pinned (see the pool's remarks); the socket layer pins a block only while an operation needs it.
            byte[] memory = GC.AllocateUninitializedArray<byte>(SlabSize);
            Blocks = new Block[BlocksPerSlab];
            for (int i = 0; i < BlocksPerSlab; i++)
            {
                Blocks[i] = new Block(pool, this, new Memory<byte>(memory, i * BlockSize, BlockSize));
            }
        }

        public Block[] Blocks { get; }

        /// <summary>Scratch for <see cref="ReleaseSlabs"/>: this slab's blocks on the free list.</summary>
        public int FreeOnList { get; set; }

        /// <summary>Once retired: its blocks still rented.</summary>
        public int Outstanding { get; set; }

        public void Retire(int outstanding)
        {
            Outstanding = outstanding;
            foreach (Block block in Blocks)
            {
                block.Retired = true;
            }
        }
    }

    /// <summary>One block; disposing it (as the pipe does when it frees a segment) puts it back in its pool.</summary>
    private sealed class Block(BlockMemoryPool pool, Slab slab, Memory<byte> memory) : IMemoryOwner<byte>
    {
        public Memory<byte> Memory { get; } = memory;

        public Slab Slab { get; } = slab;

        /// <summary>Set under the pool's lock when the slab is being released.</summary>
        public bool Retired { get; set; }

        public void Dispose() => pool.Return(this);
    }
}
