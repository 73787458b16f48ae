using System.Buffers;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Transport.Sockets.Internal;

namespace Transport.Tests;

/// <summary>
/// The send loops' scheduler under inline scheduling: what a protocol flushes, any number of times, while it handles one
/// receive batch reaches the send loop as one read (one send), once the batch is handed over; outside a hand-over a
/// flush wakes the send loop at once, as before.
/// </summary>
public sealed class SendBatchSchedulerTests
{
    [Fact]
    public async Task FlushesDuringAHandOver_ReachTheSendLoopAsOneRead_WhenItEnds()
    {
        var output = NewOutput();
        var reads = new List<long>();
        Task sendLoop = SendLoopAsync(output.Reader, reads);

        SendBatchScheduler.Enter();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                output.Writer.Write(new byte[100]);
                FlushResult flushed = await output.Writer.FlushAsync();
                Assert.False(flushed.IsCompleted);
            }

            Assert.Empty(reads);
        }
        finally
        {
            SendBatchScheduler.Exit(NullLogger.Instance);
        }

        Assert.Equal([500L], reads);
        output.Writer.Complete();
        await sendLoop;
    }

    [Fact]
    public async Task FlushOutsideAHandOver_WakesTheSendLoopAtOnce()
    {
        var output = NewOutput();
        var reads = new List<long>();
        Task sendLoop = SendLoopAsync(output.Reader, reads);

        output.Writer.Write(new byte[10]);
        await output.Writer.FlushAsync();
        Assert.Equal([10L], reads);
        output.Writer.Write(new byte[20]);
        await output.Writer.FlushAsync();
        Assert.Equal([10L, 20L], reads);

        output.Writer.Complete();
        await sendLoop;
    }

    [Fact]
    public async Task NestedHandOver_HoldsTheSendsUntilTheOutermostEnds()
    {
        var output = NewOutput();
        var reads = new List<long>();
        Task sendLoop = SendLoopAsync(output.Reader, reads);

        SendBatchScheduler.Enter();
        SendBatchScheduler.Enter();
        output.Writer.Write(new byte[7]);
        await output.Writer.FlushAsync();
        SendBatchScheduler.Exit(NullLogger.Instance);
        Assert.Empty(reads);
        output.Writer.Write(new byte[3]);
        await output.Writer.FlushAsync();
        SendBatchScheduler.Exit(NullLogger.Instance);

        Assert.Equal([10L], reads);
        output.Writer.Complete();
        await sendLoop;
    }

    [Fact]
    public void AFaultingContinuation_IsLoggedAndTheOthersStillRun()
    {
        var logger = new FakeLogger();
        bool secondRan = false;
        SendBatchScheduler.Enter();
        SendBatchScheduler.Instance.Schedule(_ => throw new InvalidOperationException("boom"), null);
        SendBatchScheduler.Instance.Schedule(_ => secondRan = true, null);
        SendBatchScheduler.Exit(logger);

        Assert.True(secondRan);
        FakeLogRecord record = Assert.Single(logger.Collector.GetSnapshot());
        Assert.Equal(LogLevel.Error, record.Level);
        Assert.IsType<InvalidOperationException>(record.Exception);
    }

    [Fact]
    public void AContinuationThatHandsOverAgain_CollectsIntoItsOwnBatch()
    {
        var order = new List<string>();
        SendBatchScheduler.Enter();
        SendBatchScheduler.Instance.Schedule(_ =>
        {
            // A send loop resumed at the end wakes a receive loop on this thread, which hands over its own batch.
            order.Add("outer");
            SendBatchScheduler.Enter();
            SendBatchScheduler.Instance.Schedule(_ => order.Add("inner"), null);
            Assert.Equal(["outer"], order);
            SendBatchScheduler.Exit(NullLogger.Instance);
        }, null);
        SendBatchScheduler.Instance.Schedule(_ => order.Add("second"), null);
        SendBatchScheduler.Exit(NullLogger.Instance);

        Assert.Equal(["outer", "inner", "second"], order);
    }

    private static Pipe NewOutput() => new(new PipeOptions(
        readerScheduler: SendBatchScheduler.Instance, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false));

    private static async Task SendLoopAsync(PipeReader reader, List<long> reads)
    {
        while (true)
        {
            ReadResult result = await reader.ReadAsync();
            if (!result.Buffer.IsEmpty)
            {
                reads.Add(result.Buffer.Length);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        reader.Complete();
    }
}
