using System.Buffers;
using System.Buffers.Binary;
using Transport.Framing;

namespace Transport.Fuzz;

/// <summary>The framers of Transport.Framing, each configured by the input's first bytes, then its writers.</summary>
internal static class FramingTargets
{
    private static readonly Func<ReadOnlySequence<byte>, byte[][]> Bytes = static m => [m.ToArray()];
    private static readonly Func<ReadOnlySequence<byte>, ReadOnlySequence<byte>[]> Slice = static m => [m];

    public static void LengthPrefixed(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        LengthPrefixedFramer framer = LengthPrefixedFrom(ref input);
        byte seed = input.Choice();
        var checks = new FramerChecks<ReadOnlySequence<byte>>(() => framer, Bytes, Slice, m => Written(w => framer.Write(w, m)));
        checks.Run(input.Rest, seed);

        // The three writers agree, write only what fits the prefix and the maximum, and read back as written.
        ReadOnlySpan<byte> payload = input.Rest;
        long capacity = framer.PrefixLength switch { 1 => byte.MaxValue, 2 => ushort.MaxValue, _ => uint.MaxValue };
        bool fits = framer.PrefixLength + payload.Length <= framer.MaxMessageSize && payload.Length <= capacity;
        byte[] copy = payload.ToArray();
        byte[]? fromSpan = WrittenOrRejected(w => framer.Write(w, copy));
        byte[]? fromSequence = WrittenOrRejected(w => framer.Write(w, Chunks.ToSequence(copy, Chunks.Cut(copy.Length, seed))));
        byte[]? fromCallback = WrittenOrRejected(w => framer.Write(w, copy.Length, copy, static (span, state) =>
        {
            state.CopyTo(span);
            return state.Length;
        }));
        Check.That((fromSpan is not null) == fits, $"Write of {payload.Length} bytes: accepted {fromSpan is not null}, fits {fits}");
        Check.That(Same(fromSpan, fromSequence) && Same(fromSpan, fromCallback), "the three Write overloads wrote different bytes");
        ReadsBackAs(checks, fromSpan, copy);
    }

    public static void Delimiter(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte shape = input.Choice();
        ReadOnlySpan<byte> delimiter = input.Take(1 + (shape & 3));
        if (delimiter.IsEmpty)
        {
            delimiter = "\n"u8;
        }

        var framer = new DelimiterFramer(delimiter, MaxSize(input.Choice(), delimiter.Length, FramerDefaults.MaxMessageSize));
        byte seed = input.Choice();
        var checks = new FramerChecks<ReadOnlySequence<byte>>(() => framer, Bytes, Slice, m => Written(w => framer.Write(w, m.ToArray())));
        checks.Run(input.Rest, seed);

        // Writable exactly when the reader would cut payload + delimiter at that delimiter, not earlier.
        byte[] payload = input.Rest.ToArray();
        byte[]? written = WrittenOrRejected(w => framer.Write(w, payload));
        bool writable = payload.Length + delimiter.Length <= framer.MaxMessageSize
            && payload.Concat(delimiter.ToArray()).ToArray().AsSpan().IndexOf(delimiter) == payload.Length;
        Check.That((written is not null) == writable, $"Write of a {payload.Length}-byte payload: accepted {written is not null}, writable {writable}");
        ReadsBackAs(checks, written, payload);
    }

    public static void Line(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        var framer = new LineFramer(MaxSize(input.Choice(), 2, FramerDefaults.MaxMessageSize));
        byte seed = input.Choice();

        // A line that arrived with a bare LF and fills the maximum does not fit once written with CRLF: not written back.
        var checks = new FramerChecks<ReadOnlySequence<byte>>(() => framer, Bytes, Slice, m => WrittenOrRejected(w => framer.Write(w, m.ToArray())));
        checks.Run(input.Rest, seed);

        byte[] line = input.Rest.ToArray();
        byte[]? written = WrittenOrRejected(w => framer.Write(w, line));
        Check.That((written is null) == (line.Length + 2 > framer.MaxMessageSize || line.AsSpan().Contains((byte)'\n')),
            "Write accepted a line with a line feed or too long, or rejected a good one");
        ReadsBackAs(checks, written, line);
    }

    public static void FixedSize(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        var framer = new FixedSizeFramer(1 + input.Choice());
        byte seed = input.Choice();
        var checks = new FramerChecks<ReadOnlySequence<byte>>(() => framer, Bytes, Slice, m => Written(w => framer.Write(w, m.ToArray())));
        checks.Run(input.Rest, seed);

        byte[] message = input.Rest.ToArray();
        byte[]? written = WrittenOrRejected(w => framer.Write(w, message));
        Check.That((written is not null) == (message.Length == framer.Size), "Write accepted a message of the wrong size, or rejected the right one");
        ReadsBackAs(checks, written, message);
    }

    public static void FixedHeader(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        FixedHeaderFramer framer = FixedHeaderFrom(ref input);
        byte seed = input.Choice();
        var checks = new FramerChecks<FixedHeaderFrame>(
            () => framer,
            static m => [m.Header.ToArray(), m.Body.ToArray()],
            static m => [m.Header, m.Body],
            m => Written(w => framer.Write(w, m.Header.ToArray(), m.Body.ToArray())));
        checks.Run(input.Rest, seed);
    }

    public static LengthPrefixedFramer LengthPrefixedFrom(ref FuzzInput input)
    {
        byte shape = input.Choice();
        int prefix = (shape % 3) switch { 0 => 1, 1 => 2, _ => 4 };
        return new LengthPrefixedFramer(prefix, bigEndian: (shape & 4) == 0, MaxSize(input.Choice(), prefix + 1, FramerDefaults.MaxMessageSize));
    }

    /// <summary>
    /// A header of 1 to 16 bytes (or the largest, 256) with a length field of 1, 2 or 4 bytes somewhere in it,
    /// big- or little-endian; a 4-byte field is read signed, so negative lengths come up too.
    /// </summary>
    public static FixedHeaderFramer FixedHeaderFrom(ref FuzzInput input)
    {
        byte shape = input.Choice();
        int headerLength = shape == 0xFF ? 256 : 1 + (shape & 15);
        byte field = input.Choice();
        int width = Math.Min(headerLength, (field % 3) switch { 0 => 1, 1 => 2, _ => 4 });
        width = width == 3 ? 2 : width;
        int offset = (field >> 2) % (headerLength - width + 1);
        bool bigEndian = (shape & 16) == 0;
        FrameBodyLengthReader read = width switch
        {
            1 => header => header[offset],
            2 => bigEndian ? header => BinaryPrimitives.ReadUInt16BigEndian(header[offset..]) : header => BinaryPrimitives.ReadUInt16LittleEndian(header[offset..]),
            _ => bigEndian ? header => BinaryPrimitives.ReadInt32BigEndian(header[offset..]) : header => BinaryPrimitives.ReadInt32LittleEndian(header[offset..]),
        };
        return new FixedHeaderFramer(headerLength, read, MaxSize(input.Choice(), headerLength, FramerDefaults.MaxMessageSize));
    }

    /// <summary>0: the default maximum; otherwise a small one, so the limits are reached by small inputs.</summary>
    public static int MaxSize(byte choice, int least, int fallback) => choice == 0 ? fallback : least + choice - 1;

    private static void ReadsBackAs<TMessage>(FramerChecks<TMessage> checks, byte[]? written, byte[] payload)
    {
        if (written is null)
        {
            return;
        }

        FramingOutcome again = checks.Parse(new ReadOnlySequence<byte>(written), [written.Length]);
        Check.That(again.Messages.Count == 1 && !again.Rejected && again.Leftover == 0, $"a written message parses as {again.Describe()}");
        Check.That(again.Messages[0].Parts[^1].AsSpan().SequenceEqual(payload), "a written message parses to other bytes than were written");
    }

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static byte[] Written(Action<ArrayBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>What the writer wrote, or null when it refused with the documented ArgumentException.</summary>
    private static byte[]? WrittenOrRejected(Action<ArrayBufferWriter<byte>> write)
    {
        try
        {
            return Written(write);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
