using System.Buffers;
using Transport.Framing;

namespace Transport.Fuzz;

/// <summary>What a framer made of some input: the messages in order, then how the input ended.</summary>
internal sealed class FramingOutcome
{
    public List<(long Consumed, byte[][] Parts)> Messages { get; } = [];

    /// <summary>Bytes left over that do not make a whole message.</summary>
    public long Leftover { get; set; }

    /// <summary>Whether the input was rejected (<see cref="InvalidFrameException"/>) after <see cref="Messages"/>.</summary>
    public bool Rejected { get; set; }

    public string Describe() =>
        $"{Messages.Count} messages ({string.Join(",", Messages.Select(m => m.Consumed))}), " +
        (Rejected ? "rejected" : $"{Leftover} bytes left");

    public bool SameAs(FramingOutcome other)
    {
        if (Messages.Count != other.Messages.Count || Rejected != other.Rejected || (!Rejected && Leftover != other.Leftover))
        {
            return false;
        }

        for (int i = 0; i < Messages.Count; i++)
        {
            (long consumed, byte[][] parts) = Messages[i];
            (long otherConsumed, byte[][] otherParts) = other.Messages[i];
            if (consumed != otherConsumed || parts.Length != otherParts.Length)
            {
                return false;
            }

            for (int p = 0; p < parts.Length; p++)
            {
                if (!parts[p].AsSpan().SequenceEqual(otherParts[p]))
                {
                    return false;
                }
            }
        }

        return true;
    }
}

/// <summary>
/// Runs a framer over fuzzed bytes the way <see cref="MessageReader{TMessage}"/> does and checks the framer
/// contract on every call: a message consumes at least one byte and never past the buffer, at most
/// <see cref="IMessageFramer{TMessage}.MaxMessageSize"/>, its slices lie inside what it consumed; "need more"
/// leaves the input as it was; only <see cref="InvalidFrameException"/> escapes. Then the same bytes in
/// segments, and arriving a chunk at a time, must give exactly the same messages and the same end, and each
/// message written back out must parse to itself.
/// </summary>
internal sealed class FramerChecks<TMessage>
{
    private readonly Func<IMessageFramer<TMessage>> _create;
    private readonly Func<TMessage, byte[][]> _snapshot;
    private readonly Func<TMessage, ReadOnlySequence<byte>[]>? _slices;
    private readonly Func<TMessage, byte[]?>? _serialize;
    private readonly bool _strict;

    /// <param name="create">A new framer, as for a new connection.</param>
    /// <param name="snapshot">The message's bytes, copied (a message is only valid until the next parse).</param>
    /// <param name="slices">The message's parts as slices of the input, to check they lie in what was consumed.</param>
    /// <param name="serialize">The message written back with the framer's own writer, or null if it cannot be.</param>
    /// <param name="strict">
    /// The built-in framers' promise: they never need more than MaxMessageSize bytes buffered and never return a
    /// larger message. Without it (the RESP framer), MessageReader's own limits apply instead.
    /// </param>
    public FramerChecks(
        Func<IMessageFramer<TMessage>> create,
        Func<TMessage, byte[][]> snapshot,
        Func<TMessage, ReadOnlySequence<byte>[]>? slices,
        Func<TMessage, byte[]?>? serialize,
        bool strict = true)
    {
        _create = create;
        _snapshot = snapshot;
        _slices = slices;
        _serialize = serialize;
        _strict = strict;
    }

    public FramingOutcome Run(ReadOnlySpan<byte> bytes, byte cutSeed)
    {
        ReadOnlyMemory<byte> data = bytes.ToArray();
        int[] sizes = Chunks.Cut(data.Length, cutSeed);

        FramingOutcome reference = Parse(new ReadOnlySequence<byte>(data), [data.Length]);
        FramingOutcome segmented = Parse(Chunks.ToSequence(data, sizes), [data.Length]);
        Check.That(segmented.SameAs(reference), $"segmented input gave {segmented.Describe()}, contiguous {reference.Describe()}");
        FramingOutcome arriving = Parse(Chunks.ToSequence(data, sizes), sizes);
        Check.That(arriving.SameAs(reference), $"input arriving in chunks gave {arriving.Describe()}, all at once {reference.Describe()}");

        if (_serialize is not null)
        {
            RoundTrip(data, reference);
        }

        return reference;
    }

    /// <summary>Parses as the bytes arrive, <paramref name="arrivals"/> at a time, like the reader over a pipe.</summary>
    public FramingOutcome Parse(ReadOnlySequence<byte> all, int[] arrivals)
    {
        IMessageFramer<TMessage> framer = _create();
        var outcome = new FramingOutcome();
        long start = 0;
        long arrived = 0;
        foreach (int size in arrivals)
        {
            if (size == 0 && arrived < all.Length)
            {
                continue;
            }

            arrived += size;
            while (true)
            {
                ReadOnlySequence<byte> buffer = all.Slice(start, arrived - start);
                bool parsed;
                TMessage? message;
                try
                {
                    parsed = TryParse(framer, buffer, out message, out long consumed);
                    if (parsed)
                    {
                        outcome.Messages.Add((consumed, _snapshot(message!)));
                        start += consumed;
                        continue;
                    }
                }
                catch (InvalidFrameException)
                {
                    outcome.Rejected = true;
                    return outcome;
                }

                if (buffer.Length > framer.MaxMessageSize)
                {
                    // MessageReader's limit on bytes buffered without a whole message.
                    Check.That(!_strict, $"the framer wants more than {buffer.Length} bytes; its maximum is {framer.MaxMessageSize}");
                    outcome.Rejected = true;
                    return outcome;
                }

                break;
            }
        }

        outcome.Leftover = arrived - start;
        return outcome;
    }

    private bool TryParse(IMessageFramer<TMessage> framer, ReadOnlySequence<byte> buffer, out TMessage? message, out long consumed)
    {
        ReadOnlySequence<byte> input = buffer;
        if (!framer.TryParse(ref input, out message))
        {
            Check.That(input.Length == buffer.Length && Chunks.Offset(buffer, input.Start) == 0,
                "the framer moved its input without returning a message");
            consumed = 0;
            return false;
        }

        consumed = buffer.Length - input.Length;
        Check.That(consumed > 0, "a message consumed no input");
        Check.That(Chunks.Offset(buffer, input.Start) == consumed && Chunks.Offset(buffer, input.End) == buffer.Length,
            "the rest of the input after a message is not the buffer's tail");
        if (consumed > framer.MaxMessageSize)
        {
            Check.That(!_strict, $"a {consumed}-byte message is over the maximum of {framer.MaxMessageSize}");
            throw new InvalidFrameException("over the maximum message size, as MessageReader rejects it");
        }

        if (_slices is not null)
        {
            foreach (ReadOnlySequence<byte> slice in _slices(message!))
            {
                long from = Chunks.Offset(buffer, slice.Start);
                long to = Chunks.Offset(buffer, slice.End);
                Check.That(from >= 0 && from <= to && to <= consumed && to - from == slice.Length,
                    $"a message part [{from}, {to}) lies outside the {consumed} bytes consumed");
            }
        }

        return true;
    }

    private void RoundTrip(ReadOnlyMemory<byte> data, FramingOutcome reference)
    {
        IMessageFramer<TMessage> framer = _create();
        var input = new ReadOnlySequence<byte>(data);
        foreach ((long consumed, byte[][] parts) in reference.Messages)
        {
            Check.That(framer.TryParse(ref input, out TMessage? message), "a message did not parse a second time");
            byte[]? written = _serialize!(message!);
            if (written is not null)
            {
                FramingOutcome again = Parse(new ReadOnlySequence<byte>(written), [written.Length]);
                Check.That(again.Messages.Count == 1 && !again.Rejected && again.Leftover == 0,
                    $"a message written back parses as {again.Describe()}");
                Check.That(new FramingOutcome { Messages = { (again.Messages[0].Consumed, parts) } }.SameAs(again),
                    "a message written back parses to different bytes");
            }
        }
    }
}
