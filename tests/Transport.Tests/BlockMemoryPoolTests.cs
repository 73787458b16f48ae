using System.Buffers;
using Transport.Sockets.Internal;

namespace Transport.Tests;

/// <summary>The socket transport's block pool: reuse without allocation, and giving back what stays unused.</summary>
public sealed class BlockMemoryPoolTests
{
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
    public void TrimUnused_KeepsBlocksInUse_AndHalvesBlocksUnusedForAPeriod()
    {
        using var pool = new BlockMemoryPool();
        IMemoryOwner<byte>[] burst = Enumerable.Range(0, 8).Select(_ => pool.Rent()).ToArray();
        foreach (IMemoryOwner<byte> block in burst)
        {
            block.Dispose();
        }

        pool.TrimUnused(); // the burst rented all 8 during this period: none was unused
        Assert.Equal(8, pool.FreeCount);

        pool.TrimUnused(); // no rent at all in this period: half go
        Assert.Equal(4, pool.FreeCount);

        pool.Rent().Dispose(); // one was needed for a moment: 3 stayed unused the whole period, 1 of them goes
        pool.TrimUnused();
        Assert.Equal(3, pool.FreeCount);

        pool.TrimUnused();
        pool.TrimUnused();
        pool.TrimUnused();
        Assert.Equal(0, pool.FreeCount);
    }
}
