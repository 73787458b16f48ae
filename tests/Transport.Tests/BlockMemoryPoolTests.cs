using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Transport.Internal;
using Transport.Sockets.Internal;

namespace Transport.Tests;

/// <summary>
/// The socket transport's block pool: reuse without allocation, and memory that really goes back after a burst
/// (whole slabs released, nothing left referencing them, and one collection once traffic is quiet).
/// </summary>
public sealed class BlockMemoryPoolTests
{
    private const int BlocksPerSlab = BlockMemoryPool.SlabSize / BlockMemoryPool.BlockSize;
    private static readonly TimeSpan Period = BlockMemoryPool.DefaultTrimPeriod;

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void ReturnedBlock_IsRentedAgain()
    {
        using var pool = new BlockMemoryPool();
        IMemoryOwner<byte> first = pool.Rent(BlockMemoryPool.BlockSize);
        Memory<byte> memory = first.Memory;
        first.Dispose();

        IMemoryOwner<byte> second = pool.Rent();

        Assert.Same(first, second);
        Assert.True(memory.Span == second.Memory.Span);
        Assert.Equal(BlockMemoryPool.BlockSize, second.Memory.Length);
    }

    [Fact]
    public void Rent_LargerThanABlock_Throws()
    {
        using var pool = new BlockMemoryPool();
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(BlockMemoryPool.BlockSize + 1));
    }

    [Fact]
    public void Blocks_AreDistinctArraySegmentsOfOneSlab()
    {
        using var pool = new BlockMemoryPool();
        IMemoryOwner<byte>[] blocks = RentMany(pool, BlocksPerSlab);

        // The socket layer's gather send needs array-backed memory; blocks must not overlap.
        ArraySegment<byte>[] segments = blocks.Select(b => MemoryMarshal.TryGetArray<byte>(b.Memory, out var s) ? s : default).ToArray();
        Assert.All(segments, s => Assert.Equal(BlockMemoryPool.BlockSize, s.Count));
        Assert.Single(segments.Select(s => s.Array).Distinct());
        Assert.Equal(BlocksPerSlab, segments.Select(s => s.Offset).Distinct().Count());
        Assert.Equal(1, pool.SlabCount);
        ReturnAll(blocks);
    }

    [Fact]
    public void AfterABurst_TwoIdlePeriods_ReleaseEverySlab_AndNothingKeepsThemReachable()
    {
        using var pool = new BlockMemoryPool(_time, Period, NullLogger.Instance, collector: null);
        WeakReference[] slabs = BurstAndReturn(pool, blocks: 1000);
        Assert.Equal((1000 + BlocksPerSlab - 1) / BlocksPerSlab, pool.SlabCount);

        _time.Advance(Period); // the burst's own period: every block was needed at its peak, none goes
        Assert.Equal(1000 / BlocksPerSlab + 1, pool.SlabCount);

        _time.Advance(Period); // a whole period without a rent: everything goes
        Assert.Equal(0, pool.SlabCount);
        Assert.Equal(0, pool.FreeCount);
        Assert.Equal(slabs.Length * (long)BlockMemoryPool.SlabSize, pool.ReleasedBytes);

        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
        Assert.DoesNotContain(slabs, s => s.IsAlive);
    }

    [Fact]
    public void BusyPeriods_KeepTheWorkingSet_AndReleaseHalfOfTheSlabsTheyDidNotNeed()
    {
        using var pool = new BlockMemoryPool(_time, Period, NullLogger.Instance, collector: null);
        BurstAndReturn(pool, blocks: 64 * BlocksPerSlab);
        _time.Advance(Period);
        Assert.Equal(64, pool.SlabCount);

        // Steady traffic: 4 slabs' worth of blocks in use at its peak, every period.
        int[] slabsAfterEachPeriod = new int[4];
        for (int period = 0; period < slabsAfterEachPeriod.Length; period++)
        {
            ReturnAll(RentMany(pool, 4 * BlocksPerSlab));
            _time.Advance(Period);
            slabsAfterEachPeriod[period] = pool.SlabCount;
        }

        Assert.Equal([34, 19, 12, 8], slabsAfterEachPeriod); // (64-4)/2 = 30 go, then (34-4)/2 = 15, ...
        IMemoryOwner<byte>[] workingSet = RentMany(pool, 4 * BlocksPerSlab);
        Assert.Equal(8, pool.SlabCount); // the working set never needed a new slab
        ReturnAll(workingSet);
    }

    [Fact]
    public void ATrickleOfRents_KeepsWhatItUses_AndReleasesTheWholeSlabsItDidNotNeed()
    {
        using var pool = new BlockMemoryPool(_time, Period, NullLogger.Instance, collector: null);
        BurstAndReturn(pool, blocks: 10 * BlocksPerSlab);
        _time.Advance(Period);

        pool.Rent().Dispose(); // a health check
        _time.Advance(Period);

        Assert.Equal(1, pool.SlabCount); // 319 blocks unused: 9 whole slabs go; the one the trickle uses stays
        pool.Rent().Dispose();
        Assert.Equal(1, pool.SlabCount);
    }

    [Fact]
    public void ASlabWithABlockStillRented_IsRetired_AndReleasedWhenTheBlockComesBack()
    {
        using var pool = new BlockMemoryPool(_time, Period, NullLogger.Instance, collector: null);
        IMemoryOwner<byte>[] blocks = RentMany(pool, BlocksPerSlab);
        IMemoryOwner<byte> held = blocks[0]; // e.g. a stalled connection's buffer
        ReturnAll(blocks[1..]);
        _time.Advance(Period);
        _time.Advance(Period);

        // Retired: its free blocks are off the list, so the next rent takes a new slab.
        Assert.Equal(1, pool.SlabCount);
        Assert.Equal(0, pool.FreeCount);
        IMemoryOwner<byte> next = pool.Rent();
        Assert.Equal(2, pool.SlabCount);
        Assert.False(MemoryMarshal.TryGetArray<byte>(held.Memory, out var a) && MemoryMarshal.TryGetArray<byte>(next.Memory, out var b) && a.Array == b.Array);

        held.Dispose();

        Assert.Equal(1, pool.SlabCount);
        Assert.Equal(BlockMemoryPool.SlabSize, pool.ReleasedBytes);
        next.Dispose();
        Assert.Equal(BlocksPerSlab, pool.FreeCount); // only the new slab's blocks are on the list
    }

    [Fact]
    public void AfterABurst_QuietPeriods_AskForOneCollection_NeverWhileBusy()
    {
        int collections = 0;
        long heap = 48L * 1024 * 1024; // an eighth is 6 MiB: the 8 MiB the pool releases is worth a collection
        var collector = new IdleMemoryCollector(() => heap, () => collections++);
        using var pool = new BlockMemoryPool(_time, Period, NullLogger.Instance, collector);

        BurstAndReturn(pool, blocks: 64 * BlocksPerSlab); // 8 MiB
        for (int i = 0; i < 3; i++)
        {
            ReturnAll(RentMany(pool, 4 * BlocksPerSlab));
            _time.Advance(Period); // busy, however much it releases
        }

        Assert.Equal(0, collections);

        _time.Advance(Period);
        Assert.Equal(1, collections);
        _time.Advance(Period);
        _time.Advance(Period);
        Assert.Equal(1, collections); // nothing more to give back
    }

    [Fact]
    public void AFailingTrim_IsLoggedAtError_AndTheNextPeriodTrimsAgain()
    {
        var logs = new TestLoggerProvider();
        ILogger logger = logs.CreateLogger("Transport.Sockets");
        bool fail = true;
        var collector = new IdleMemoryCollector(() => 16L * 1024 * 1024, () =>
        {
            if (fail)
            {
                throw new InvalidOperationException("boom");
            }
        });
        using var pool = new BlockMemoryPool(_time, Period, logger, collector);
        BurstAndReturn(pool, blocks: 64 * BlocksPerSlab);
        _time.Advance(Period);

        _time.Advance(Period); // releases 8 MiB, then the collection throws on the timer

        Assert.Contains(logs.At(LogLevel.Error), e => e.EventId.Id == 122 && e.Exception is InvalidOperationException);
        fail = false;
        BurstAndReturn(pool, blocks: 64 * BlocksPerSlab);
        _time.Advance(Period);
        _time.Advance(Period);
        Assert.Equal(1, collector.Collections);
    }

    [Fact]
    public void Collector_CollectsWhenTheHeapGrewAnEighthWhileBusy_NotForLess()
    {
        long heap = 100L * 1024 * 1024;
        int collections = 0;
        var collector = new IdleMemoryCollector(() => heap, () => collections++);
        using IdleMemoryCollector.Source source = collector.AddSource(NullLogger.Instance);

        heap += 10L * 1024 * 1024; // 10 MiB more garbage or data: less than an eighth of 110 MiB
        Assert.False(source.OnTrimmed(quiet: false, 0));
        Assert.False(source.OnTrimmed(quiet: true, 0));

        heap += 20L * 1024 * 1024; // a busy period grows it to 130 MiB: 30 MiB since the last collection
        Assert.False(source.OnTrimmed(quiet: false, 0));
        Assert.True(source.OnTrimmed(quiet: true, 0));
        Assert.Equal(1, collections);

        Assert.False(source.OnTrimmed(quiet: true, 0)); // quiet again, nothing new: no second collection
        heap += 30L * 1024 * 1024;
        Assert.False(source.OnTrimmed(quiet: true, 0)); // growth without traffic is not ours to judge
    }

    [Fact]
    public void Collector_CollectsForWhatThePoolReleased_EvenWithoutABusyPeriod()
    {
        long heap = 300L * 1024 * 1024;
        int collections = 0;
        var collector = new IdleMemoryCollector(() => heap, () => collections++);
        using IdleMemoryCollector.Source source = collector.AddSource(NullLogger.Instance);

        // A burst of stalled readers rents nothing while it holds; its blocks come back when they close.
        Assert.False(source.OnTrimmed(quiet: true, 16L * 1024 * 1024)); // 16 MiB < 300/8
        Assert.True(source.OnTrimmed(quiet: true, 32L * 1024 * 1024)); // 48 MiB in all >= 37.5
        Assert.Equal(1, collections);
    }

    [Fact]
    public void Collector_WaitsUntilEverySourceIsQuiet_SoAPauseNeverMeetsAnotherTransportsTraffic()
    {
        long heap = 100L * 1024 * 1024;
        int collections = 0;
        var collector = new IdleMemoryCollector(() => heap, () => collections++);
        using IdleMemoryCollector.Source pool = collector.AddSource(NullLogger.Instance);
        IdleMemoryCollector.Source udp = collector.AddSource(NullLogger.Instance);

        // A UDP burst grows the heap by 40 MiB, then ends while the socket pool's connections are still busy.
        heap += 40L * 1024 * 1024;
        Assert.False(udp.OnTrimmed(quiet: false, 0));
        Assert.False(pool.OnTrimmed(quiet: false, 0));
        Assert.False(udp.OnTrimmed(quiet: true, 0)); // the pool's last period was busy: no pause yet
        Assert.Equal(0, collections);

        Assert.True(pool.OnTrimmed(quiet: true, 0)); // now every source is quiet: the burst's garbage goes
        Assert.Equal(1, collections);

        // A source that left (its endpoint unbound while busy) no longer holds collections back.
        heap += 40L * 1024 * 1024;
        Assert.False(udp.OnTrimmed(quiet: false, 0));
        udp.Dispose();
        Assert.False(udp.OnTrimmed(quiet: false, 0)); // a report after leaving changes nothing
        Assert.True(pool.OnTrimmed(quiet: true, 0));
        Assert.Equal(2, collections);
    }

    [Fact]
    public void Collector_AFailedCollection_IsTriedAgainAtTheNextQuietPeriod()
    {
        long heap = 64L * 1024 * 1024;
        bool fail = true;
        var collector = new IdleMemoryCollector(() => heap, () =>
        {
            if (fail)
            {
                throw new InvalidOperationException("boom");
            }
        });
        using IdleMemoryCollector.Source source = collector.AddSource(NullLogger.Instance);

        Assert.Throws<InvalidOperationException>(() => source.OnTrimmed(quiet: true, 32L * 1024 * 1024));
        Assert.Equal(0, collector.Collections);
        fail = false;
        Assert.True(source.OnTrimmed(quiet: true, 0)); // what was released is still owed
        Assert.Equal(1, collector.Collections);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference[] BurstAndReturn(BlockMemoryPool pool, int blocks)
    {
        IMemoryOwner<byte>[] rented = RentMany(pool, blocks);
        WeakReference[] slabs = rented
            .Select(b => MemoryMarshal.TryGetArray<byte>(b.Memory, out var s) ? s.Array! : throw new InvalidOperationException())
            .Distinct()
            .Select(a => new WeakReference(a))
            .ToArray();
        ReturnAll(rented);
        return slabs;
    }

    private static IMemoryOwner<byte>[] RentMany(BlockMemoryPool pool, int count) =>
        Enumerable.Range(0, count).Select(_ => pool.Rent()).ToArray();

    private static void ReturnAll(IEnumerable<IMemoryOwner<byte>> blocks)
    {
        foreach (IMemoryOwner<byte> block in blocks)
        {
            block.Dispose();
        }
    }
}
