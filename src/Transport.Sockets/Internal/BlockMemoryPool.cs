using System.Buffers;

namespace Transport.Sockets.Internal;

/// <summary>
/// The pipes' memory: fixed-size blocks that are kept after use and handed out again, so a busy connection
/// allocates nothing per message however many blocks are buffered at once.
/// </summary>
/// <remarks>
/// <see cref="ArrayPool{T}.Shared"/> keeps only a few dozen arrays per size and core; under backpressure
/// (a slow peer, typical of Unix sockets with their small kernel buffers) the pipes hold hundreds of blocks,
/// so the shared pool ran dry on rent and dropped arrays on return: about 700 B allocated per 4 KiB message.
/// This pool instead grows to what the connections need at once, and gives back what stayed unused for a
/// whole trim period, so a past burst does not pin its peak memory forever.
/// </remarks>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    /// <summary>The size of every block: a page, as Kestrel's pool, so a receive or send never straddles more pages than it needs.</summary>
    public const int BlockSize = 4096;

    private static readonly TimeSpan TrimPeriod = TimeSpan.FromSeconds(10);

    private readonly object _lock = new();
    private Block[] _free = new Block[64];
    private int _count;
    private int _lowWater;
    private bool _disposed;
    private readonly Timer _trimTimer;

    /// <summary>
    /// The pool every socket connection of the process uses, so blocks freed by one connection serve the next
    /// whichever transport instance or listener it belongs to. Never disposed.
    /// </summary>
    public static BlockMemoryPool Process { get; } = new();

    public BlockMemoryPool()
    {
        // The timer holds the pool only weakly, so an unreferenced pool (e.g. a test's transport) is collected,
        // and then its timer, referenced by nothing, is finalized and stops.
        var self = new WeakReference<BlockMemoryPool>(this);
        _trimTimer = new Timer(static state => Trim((WeakReference<BlockMemoryPool>)state!), self, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _trimTimer.Change(TrimPeriod, TrimPeriod);
    }

    /// <inheritdoc />
    public override int MaxBufferSize => BlockSize;

    /// <inheritdoc />
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        lock (_lock)
        {
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

        return new Block(this);
    }

    /// <summary>The blocks kept for reuse (for tests and diagnostics).</summary>
    internal int FreeCount => Volatile.Read(ref _count);

    private void Return(Block block)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            if (_count == _free.Length)
            {
                Array.Resize(ref _free, _free.Length * 2);
            }

            _free[_count++] = block;
        }
    }

    private static void Trim(WeakReference<BlockMemoryPool> reference)
    {
        if (reference.TryGetTarget(out BlockMemoryPool? pool))
        {
            pool.TrimUnused();
        }
    }

    /// <summary>
    /// Drops half of the blocks that were never rented during the last period (the low-water mark of the free
    /// list): steady traffic keeps its working set, an idle pool shrinks geometrically to nothing.
    /// </summary>
    internal void TrimUnused()
    {
        lock (_lock)
        {
            int unused = _lowWater;
            int drop = unused == 1 ? 1 : unused / 2;
            if (drop > 0)
            {
                // The bottom of the stack is what stayed unused longest; the top is still warm in the caches.
                Array.Copy(_free, drop, _free, 0, _count - drop);
                Array.Clear(_free, _count - drop, drop);
                _count -= drop;
            }

            _lowWater = _count;
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
        lock (_lock)
        {
            _disposed = true;
            Array.Clear(_free, 0, _count);
            _count = 0;
        }
    }

    /// <summary>One block; disposing it (as the pipe does when it frees a segment) puts it back in its pool.</summary>
    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        // Pinned: the socket layer pins buffers for every operation, which costs nothing for these.
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool.Return(this);
    }
}
