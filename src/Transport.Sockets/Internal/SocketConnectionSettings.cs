using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Transport.Sockets.Internal.Epoll;

namespace Transport.Sockets.Internal;

/// <summary>
/// What every connection of one listener (or of the transport's client connections) shares: the pipe options, the
/// pool, the logger, the drain deadlines. One object per listener instead of these fields and two
/// <see cref="PipeOptions"/> in every connection.
/// </summary>
internal sealed class SocketConnectionSettings
{
    // The most bytes one flush to the protocol carries when the kernel already holds more (see ReceiveLoopAsync).
    // Measured on echo-tcp-stream: 16 KiB gained little, 256 KiB less than 64 KiB.
    private const int MaxReceiveBatch = 64 * 1024;

    public SocketConnectionSettings(SocketTransportOptions options, TransportListenOptions limits, BlockMemoryPool memoryPool, ILogger logger,
        DrainDeadlines drainDeadlines, EpollEngine? engine = null, bool acceptedOnIoThread = false)
    {
        Engine = engine;
        StartInline = acceptedOnIoThread && engine is not null && options.InlineScheduling;
        MemoryPool = memoryPool;
        Logger = logger;
        DrainDeadlines = drainDeadlines;
        WaitForData = options.WaitForDataBeforeAllocatingBuffer;
        BatchSends = options.InlineScheduling;
        ReceiveBatch = limits.MaxReadBufferSize > 0 ? (int)Math.Min(MaxReceiveBatch, limits.MaxReadBufferSize) : MaxReceiveBatch;

        PipeScheduler app = options.InlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        InputOptions = new PipeOptions(
            pool: memoryPool,
            readerScheduler: app,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: limits.MaxReadBufferSize,
            resumeWriterThreshold: limits.MaxReadBufferSize / 2,
            minimumSegmentSize: BlockMemoryPool.BlockSize,
            useSynchronizationContext: false);
        // Under inline scheduling the protocol runs inside the receive loop's flush, and the send loop it wakes waits for
        // that flush to return, so one receive batch is answered with one send (see SendBatchScheduler).
        OutputOptions = new PipeOptions(
            pool: memoryPool,
            readerScheduler: BatchSends ? SendBatchScheduler.Instance : PipeScheduler.Inline,
            writerScheduler: app,
            pauseWriterThreshold: limits.MaxWriteBufferSize,
            resumeWriterThreshold: limits.MaxWriteBufferSize / 2,
            minimumSegmentSize: BlockMemoryPool.BlockSize,
            useSynchronizationContext: false);
    }

    public BlockMemoryPool MemoryPool { get; }

    public ILogger Logger { get; }

    public DrainDeadlines DrainDeadlines { get; }

    public bool WaitForData { get; }

    /// <summary>The transport's own I/O threads, when they serve these connections; null for .NET's socket engine.</summary>
    public EpollEngine? Engine { get; }

    /// <summary>Whether the send loops resume through <see cref="SendBatchScheduler"/> (under inline scheduling).</summary>
    public bool BatchSends { get; }

    public int ReceiveBatch { get; }

    /// <summary>
    /// Whether the protocol may start on the I/O thread that accepted the connection: it runs there anyway, under inline
    /// scheduling (see <see cref="Transport.Internal.IInlineStartConnection"/>).
    /// </summary>
    public bool StartInline { get; }

    public PipeOptions InputOptions { get; }

    public PipeOptions OutputOptions { get; }
}
