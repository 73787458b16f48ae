using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Transport.Framing.Tests;

/// <summary>The reader over a real pipe: partial reads, batches, limits, end of input, cancellation.</summary>
public sealed class MessageReaderTests
{
    private static readonly LineFramer Lines = new(maxMessageSize: 64);

    [Fact]
    public async Task ByteAtATime_EveryMessageArrivesWhole()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        byte[] wire = "one\r\ntwo\nthree\r\n"u8.ToArray();
        var received = new List<string>();

        Task reading = Task.Run(async () =>
        {
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out ReadOnlySequence<byte> line))
                {
                    received.Add(Encoding.ASCII.GetString(line));
                }
            }
        });
        foreach (byte b in wire)
        {
            await pipe.Writer.WriteAsync(new[] { b }).DefaultTimeout();
        }

        await pipe.Writer.CompleteAsync();
        await reading.DefaultTimeout();

        Assert.Equal(["one", "two", "three"], received);
        Assert.True(reader.IsCompleted);
    }

    [Fact]
    public async Task PartialMessage_WaitsForMoreBytes_WithoutReadingAgain()
    {
        var pipe = new Pipe();
        var counting = new CountingPipeReader(pipe.Reader);
        var reader = new MessageReader<ReadOnlySequence<byte>>(counting, Lines);

        await pipe.Writer.WriteAsync("hel"u8.ToArray());
        ValueTask<bool> waiting = reader.WaitToReadAsync();

        // The first read returned "hel"; the reader marked it examined and is now waiting in its second read.
        Assert.False(waiting.IsCompleted);
        Assert.Equal(2, counting.Reads);

        await pipe.Writer.WriteAsync("lo\n"u8.ToArray());
        Assert.True(await waiting.AsTask().DefaultTimeout());
        Assert.True(reader.TryRead(out ReadOnlySequence<byte> line));
        Assert.Equal("hello", Encoding.ASCII.GetString(line));
        Assert.Equal(2, counting.Reads);
    }

    [Fact]
    public async Task SeveralMessagesInOneRead_AreOneBatch()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        await pipe.Writer.WriteAsync("a\nb\nc\npartial"u8.ToArray());

        Assert.True(await reader.WaitToReadAsync().AsTask().DefaultTimeout());
        var batch = new List<string>();
        while (reader.TryRead(out ReadOnlySequence<byte> line))
        {
            batch.Add(Encoding.ASCII.GetString(line));
        }

        Assert.Equal(["a", "b", "c"], batch);
        Assert.False(reader.WaitToReadAsync().IsCompleted);
    }

    [Fact]
    public async Task MoreThanMaximumBufferedWithoutAMessage_IsInvalidFrame()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        await pipe.Writer.WriteAsync(Enumerable.Repeat((byte)'x', 65).ToArray());

        var error = await Assert.ThrowsAsync<InvalidFrameException>(() => reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.Contains("maximum line length of 64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CustomFramerThatNeverFails_IsStillBoundedByTheReader()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, new NeverEnoughFramer());
        await pipe.Writer.WriteAsync(new byte[10]);
        ValueTask<bool> waiting = reader.WaitToReadAsync();
        Assert.False(waiting.IsCompleted);

        await pipe.Writer.WriteAsync(new byte[10]);

        var error = await Assert.ThrowsAsync<InvalidFrameException>(() => waiting.AsTask().DefaultTimeout());
        Assert.Contains("20 bytes buffered without a whole message; the maximum message size is 16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WholeMessageLargerThanMaximum_FromACustomFramer_IsInvalidFrame()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, new EverythingFramer());
        await pipe.Writer.WriteAsync(new byte[17]);

        var error = await Assert.ThrowsAsync<InvalidFrameException>(() => reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.Contains("a 17-byte message is more than the maximum message size of 16 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InputEndsInsideAMessage_IsInvalidFrame_AfterTheWholeOnes()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, new LengthPrefixedFramer(2));
        await pipe.Writer.WriteAsync(new byte[] { 0, 1, 42, 0, 9, 1, 2 });
        await pipe.Writer.CompleteAsync();

        Assert.True(await reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.True(reader.TryRead(out ReadOnlySequence<byte> first));
        Assert.Equal(new byte[] { 42 }, first.ToArray());
        var error = await Assert.ThrowsAsync<InvalidFrameException>(() => reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.Contains("ended inside a message, 4 bytes into it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InputEndsBetweenMessages_IsAFalse_NotAnError()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        await pipe.Writer.CompleteAsync();

        Assert.False(await reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.True(reader.IsCompleted);
    }

    [Fact]
    public async Task CancelPendingRead_ReturnsFalse_AndTheNextWaitCarriesOn()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        ValueTask<bool> waiting = reader.WaitToReadAsync();

        pipe.Reader.CancelPendingRead();
        Assert.False(await waiting.AsTask().DefaultTimeout());
        await pipe.Writer.WriteAsync("after\n"u8.ToArray());

        Assert.True(await reader.WaitToReadAsync().AsTask().DefaultTimeout());
        Assert.True(reader.TryRead(out ReadOnlySequence<byte> line));
        Assert.Equal("after", Encoding.ASCII.GetString(line));
    }

    [Fact]
    public async Task CancellationToken_CancelsTheWait()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, Lines);
        using var cancel = new CancellationTokenSource();
        ValueTask<bool> waiting = reader.WaitToReadAsync(cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.AsTask().DefaultTimeout());
    }

    [Fact]
    public async Task FramerThatConsumesNothing_IsAProgrammingError_NotAHang()
    {
        var pipe = new Pipe();
        var reader = new MessageReader<ReadOnlySequence<byte>>(pipe.Reader, new ConsumesNothingFramer());
        await pipe.Writer.WriteAsync(new byte[] { 1 });

        await Assert.ThrowsAsync<InvalidOperationException>(() => reader.WaitToReadAsync().AsTask().DefaultTimeout());
    }

    private sealed class NeverEnoughFramer : IMessageFramer<ReadOnlySequence<byte>>
    {
        public int MaxMessageSize => 16;

        public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
        {
            message = default;
            return false;
        }
    }

    private sealed class EverythingFramer : IMessageFramer<ReadOnlySequence<byte>>
    {
        public int MaxMessageSize => 16;

        public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
        {
            message = input;
            input = input.Slice(input.End);
            return true;
        }
    }

    private sealed class ConsumesNothingFramer : IMessageFramer<ReadOnlySequence<byte>>
    {
        public int MaxMessageSize => 16;

        public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
        {
            message = input.Slice(0, 0);
            return true;
        }
    }

    /// <summary>Counts reads, to show the reader does not spin on data it has examined.</summary>
    private sealed class CountingPipeReader(PipeReader inner) : PipeReader
    {
        public int Reads { get; private set; }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            Reads++;
            return inner.ReadAsync(cancellationToken);
        }

        public override bool TryRead(out ReadResult result) => inner.TryRead(out result);

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }
}
