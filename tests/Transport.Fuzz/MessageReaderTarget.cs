using System.Buffers;
using System.IO.Pipelines;
using Transport.Framing;

namespace Transport.Fuzz;

/// <summary>
/// <see cref="MessageReader{TMessage}"/> over a real <see cref="Pipe"/>, fed a chunk per write as a transport
/// would, with <see cref="PipeReader.CancelPendingRead"/> now and then (what a request to close does): it must
/// hand out exactly the messages the framer finds in the whole input, in order, and end as the framer says
/// (cleanly, or with <see cref="InvalidFrameException"/> for bad framing or a stream that ends inside a message).
/// </summary>
internal static class MessageReaderTarget
{
    private static readonly PipeOptions Options = new(
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0,
        useSynchronizationContext: false);

    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte kind = input.Choice();
        switch (kind % 5)
        {
            case 0:
                LengthPrefixedFramer prefixed = FramingTargets.LengthPrefixedFrom(ref input);
                Drive(prefixed, ref input, static m => [m.ToArray()]);
                break;
            case 1:
                var delimiter = new DelimiterFramer((kind & 8) == 0 ? "\r\n"u8 : "\0"u8, FramingTargets.MaxSize(input.Choice(), 2, 4096));
                Drive(delimiter, ref input, static m => [m.ToArray()]);
                break;
            case 2:
                Drive(new LineFramer(FramingTargets.MaxSize(input.Choice(), 2, 4096)), ref input, static m => [m.ToArray()]);
                break;
            case 3:
                Drive(new FixedSizeFramer(1 + input.Choice()), ref input, static m => [m.ToArray()]);
                break;
            default:
                FixedHeaderFramer header = FramingTargets.FixedHeaderFrom(ref input);
                Drive(header, ref input, static m => [m.Header.ToArray(), m.Body.ToArray()]);
                break;
        }
    }

    private static void Drive<TMessage>(IMessageFramer<TMessage> framer, ref FuzzInput input, Func<TMessage, byte[][]> snapshot)
    {
        byte seed = input.Choice();
        byte cancels = input.Choice();
        byte[] data = input.Rest.ToArray();
        int[] sizes = Chunks.Cut(data.Length, seed);

        var checks = new FramerChecks<TMessage>(() => framer, snapshot, null, null);
        FramingOutcome expected = checks.Parse(new ReadOnlySequence<byte>(data), [data.Length]);

        var pipe = new Pipe(Options);
        var reader = new MessageReader<TMessage>(pipe.Reader, framer);
        var got = new FramingOutcome();
        int next = 0;
        int offset = 0;
        int writes = 0;
        bool canceled = false;
        int canceledAt = -1;

        // Bad framing surfaces from WaitToReadAsync (at once or when it completes) or from TryRead.
        try
        {
            ValueTask<bool> pending = reader.WaitToReadAsync();
            while (true)
            {
                while (!pending.IsCompleted)
                {
                    if (canceledAt != writes && ((cancels >> (writes & 7)) & 1) == 1)
                    {
                        // The next wait returns false without a message; a later one carries on.
                        canceled = true;
                        canceledAt = writes;
                        pipe.Reader.CancelPendingRead();
                    }
                    else if (next < sizes.Length)
                    {
                        pipe.Writer.Write(data.AsSpan(offset, sizes[next]));
                        offset += sizes[next++];
                        ValueTask<FlushResult> flush = pipe.Writer.FlushAsync();
                        Check.That(flush.IsCompletedSuccessfully, "a flush to an unbounded pipe did not complete at once");
                        writes++;
                    }
                    else
                    {
                        pipe.Writer.Complete();
                        Check.That(pending.IsCompleted, "the reader still waits after the input completed");
                    }
                }

                bool hasMessage = pending.GetAwaiter().GetResult();
                if (!hasMessage)
                {
                    if (canceled && !reader.IsCompleted)
                    {
                        canceled = false;
                        pending = reader.WaitToReadAsync();
                        continue;
                    }

                    Check.That(reader.IsCompleted, "WaitToReadAsync returned false before the input ended, with no cancel");
                    break;
                }

                int batch = 0;
                while (reader.TryRead(out TMessage? message))
                {
                    got.Messages.Add((0, snapshot(message)));
                    batch++;
                }

                Check.That(batch > 0, "WaitToReadAsync returned true but TryRead had no message");
                pending = reader.WaitToReadAsync();
            }
        }
        catch (InvalidFrameException)
        {
            got.Rejected = true;
        }

        // The reader does not say what each message consumed; compare the messages and the end.
        var want = new FramingOutcome { Rejected = expected.Rejected || expected.Leftover > 0 };
        foreach ((_, byte[][] parts) in expected.Messages)
        {
            want.Messages.Add((0, parts));
        }

        got.Leftover = want.Leftover = 0;
        Check.That(got.SameAs(want), $"MessageReader gave {got.Describe()}; the framer over the whole input {want.Describe()}");
    }
}
