using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Transport.Framing.Tests;

/// <summary>
/// The built-in framers on single-segment, two-segment (every split point), byte-per-segment and random
/// multi-segment input, and on bad input.
/// </summary>
public sealed class FramerTests
{
    public static IEnumerable<object[]> PrefixShapes =>
    [
        [1, true], [2, true], [2, false], [4, true], [4, false],
    ];

    [Theory]
    [MemberData(nameof(PrefixShapes))]
    public void LengthPrefixed_RoundTrips_AtEverySplitPoint(int prefixLength, bool bigEndian)
    {
        var framer = new LengthPrefixedFramer(prefixLength, bigEndian);
        byte[][] payloads = [[], "a"u8.ToArray(), Encoding.ASCII.GetBytes(new string('x', 200))];
        byte[] wire = Encode(payloads, (o, p) => framer.Write(o, p));

        foreach (ReadOnlySequence<byte> input in EveryShape(wire))
        {
            Assert.Equal(payloads, ParseAll(framer, input));
        }
    }

    [Fact]
    public void LengthPrefixed_PrefixBytes_AreBigOrLittleEndian()
    {
        Assert.Equal(new byte[] { 0, 3, 1, 2, 3 }, Encode([[1, 2, 3]], (o, p) => new LengthPrefixedFramer(2).Write(o, p)));
        Assert.Equal(new byte[] { 3, 0, 0, 0, 1, 2, 3 }, Encode([[1, 2, 3]], (o, p) => new LengthPrefixedFramer(4, bigEndian: false).Write(o, p)));
    }

    [Fact]
    public void LengthPrefixed_PayloadWriter_SerializesInPlace()
    {
        var framer = new LengthPrefixedFramer(2);
        var output = new ArrayBufferWriter<byte>();

        framer.Write(output, 16, 42L, static (span, value) => value.TryFormat(span, out int written) ? written : 0);

        Assert.Equal(new byte[] { 0, 2, (byte)'4', (byte)'2' }, output.WrittenSpan.ToArray());
    }

    [Fact]
    public void LengthPrefixed_IncompletePrefixOrPayload_NeedsMore_AndLeavesInputAlone()
    {
        var framer = new LengthPrefixedFramer(4);
        foreach (byte[] partial in new[] { new byte[] { 0, 0 }, new byte[] { 0, 0, 0, 5, 1, 2 } })
        {
            ReadOnlySequence<byte> input = new(partial);
            Assert.False(framer.TryParse(ref input, out _));
            Assert.Equal(partial.Length, input.Length);
        }
    }

    [Fact]
    public void LengthPrefixed_LengthOverMaximum_FailsBeforeThePayloadArrives()
    {
        var framer = new LengthPrefixedFramer(4, maxMessageSize: 1024);
        ReadOnlySequence<byte> input = new([0, 0, 4, 0]);

        var error = Assert.Throws<InvalidFrameException>(() => framer.TryParse(ref input, out _));
        Assert.Contains("1028 bytes, more than the maximum message size of 1024", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF })]
    [InlineData(new byte[] { 0x80, 0, 0, 0 })]
    public void LengthPrefixed_NegativeOrOverflowingLength_IsInvalid(byte[] prefix)
    {
        var framer = new LengthPrefixedFramer(4, maxMessageSize: int.MaxValue);
        ReadOnlySequence<byte> input = new(prefix);

        var error = Assert.Throws<InvalidFrameException>(() => framer.TryParse(ref input, out _));
        Assert.Contains("negative or overflowing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Line_AcceptsCrLfAndLf_AtEverySplitPoint()
    {
        var framer = new LineFramer();
        byte[] wire = "first\r\nsecond\n\r\nlast\r\n"u8.ToArray();

        foreach (ReadOnlySequence<byte> input in EveryShape(wire))
        {
            Assert.Equal(["first", "second", "", "last"], ParseAll(framer, input).Select(Encoding.ASCII.GetString));
        }
    }

    [Fact]
    public void Line_WritesCrLf()
    {
        Assert.Equal("hi\r\n"u8.ToArray(), Encode(["hi"u8.ToArray()], (o, p) => new LineFramer().Write(o, p)));
        Assert.Throws<ArgumentException>(() => new LineFramer().Write(new ArrayBufferWriter<byte>(), "a\nb"u8));
    }

    [Fact]
    public void Line_NoLineFeedWithinMaximum_IsInvalid()
    {
        var framer = new LineFramer(maxMessageSize: 16);
        ReadOnlySequence<byte> almost = new(new byte[16]);
        ReadOnlySequence<byte> over = new(new byte[17]);

        Assert.False(framer.TryParse(ref almost, out _));
        var error = Assert.Throws<InvalidFrameException>(() => framer.TryParse(ref over, out _));
        Assert.Contains("no line feed within the maximum line length of 16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delimiter_MultiByteDelimiter_SplitAcrossSegments_IsFound()
    {
        var framer = new DelimiterFramer("\r\n\r\n"u8);
        byte[][] payloads = ["head: 1\r\nx: 2"u8.ToArray(), []];
        byte[] wire = Encode(payloads, (o, p) => framer.Write(o, p));

        foreach (ReadOnlySequence<byte> input in EveryShape(wire))
        {
            Assert.Equal(payloads, ParseAll(framer, input));
        }
    }

    [Theory]
    [InlineData("aa", "xa")]
    [InlineData("\r\n\r\n", "head\r\n")]
    [InlineData("\u0003\u0003\u0003\u0003", "\u0003")]
    public void Delimiter_Write_PayloadWhoseEndStartsTheDelimiter_IsRejected(string delimiter, string payload)
    {
        // Written, "xa" + "aa" would read back as "x" and a stray "a" starting the next message.
        var framer = new DelimiterFramer(Encoding.ASCII.GetBytes(delimiter));

        Assert.Throws<ArgumentException>(() => framer.Write(new ArrayBufferWriter<byte>(), Encoding.ASCII.GetBytes(payload)));
    }

    [Fact]
    public void Delimiter_Write_PayloadEndingInPartOfANonOverlappingDelimiter_RoundTrips()
    {
        var framer = new DelimiterFramer("\r\n"u8);
        byte[][] payloads = ["ends in CR\r"u8.ToArray(), "\n starts with LF"u8.ToArray()];

        Assert.Equal(payloads, ParseAll(framer, new ReadOnlySequence<byte>(Encode(payloads, (o, p) => framer.Write(o, p)))));
    }

    [Fact]
    public void Delimiter_ThatNeverComes_FailsAtTheMaximum()
    {
        var framer = new DelimiterFramer([0], maxMessageSize: 100);
        ReadOnlySequence<byte> input = Segments.ByteAtATime(Enumerable.Repeat((byte)'a', 101).ToArray());

        Assert.Throws<InvalidFrameException>(() => framer.TryParse(ref input, out _));
    }

    [Fact]
    public void FixedSize_CutsEveryNBytes_AtEverySplitPoint()
    {
        var framer = new FixedSizeFramer(3);
        byte[] wire = "abcdefghi"u8.ToArray();

        foreach (ReadOnlySequence<byte> input in EveryShape(wire))
        {
            Assert.Equal(["abc", "def", "ghi"], ParseAll(framer, input).Select(Encoding.ASCII.GetString));
        }
    }

    [Fact]
    public void FixedHeader_ReadsBodyLengthFromHeader_AtEverySplitPoint()
    {
        // A 3-byte header: a type byte and a big-endian 16-bit body length.
        var framer = new FixedHeaderFramer(3, static header => BinaryPrimitives.ReadUInt16BigEndian(header[1..]));
        byte[] wire = [7, 0, 2, (byte)'h', (byte)'i', 8, 0, 0, 9, 0, 1, (byte)'!'];

        foreach (ReadOnlySequence<byte> input in EveryShape(wire))
        {
            var frames = new List<(byte Type, string Body)>();
            ReadOnlySequence<byte> rest = input;
            while (framer.TryParse(ref rest, out FixedHeaderFrame frame))
            {
                frames.Add((frame.Header.FirstSpan[0], Encoding.ASCII.GetString(frame.Body)));
            }

            Assert.True(rest.IsEmpty);
            Assert.Equal([(7, "hi"), (8, ""), (9, "!")], frames);
        }
    }

    [Fact]
    public void FixedHeader_NegativeOrTooLargeBody_IsInvalid()
    {
        var negative = new FixedHeaderFramer(4, static header => BinaryPrimitives.ReadInt32BigEndian(header));
        var small = new FixedHeaderFramer(4, static header => BinaryPrimitives.ReadInt32BigEndian(header), maxMessageSize: 10);
        ReadOnlySequence<byte> minusOne = new([0xFF, 0xFF, 0xFF, 0xFF]);
        ReadOnlySequence<byte> seven = new([0, 0, 0, 7]);

        Assert.Contains("negative body length", Assert.Throws<InvalidFrameException>(() => negative.TryParse(ref minusOne, out _)).Message, StringComparison.Ordinal);
        Assert.Contains("11 bytes", Assert.Throws<InvalidFrameException>(() => small.TryParse(ref seven, out _)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Property_RandomMessages_RandomChunking_RoundTripThroughEveryFramer()
    {
        var random = new Random(20240611);
        var lengthPrefixed = new LengthPrefixedFramer(2, bigEndian: false);
        var line = new LineFramer();
        var delimiter = new DelimiterFramer("||"u8);
        for (int iteration = 0; iteration < 300; iteration++)
        {
            byte[][] binary = Enumerable.Range(0, random.Next(1, 20)).Select(_ => ConnectionTestExtensions.RandomBytes(random.Next(0, 300))).ToArray();
            byte[][] text = Enumerable.Range(0, random.Next(1, 20))
                .Select(_ => Enumerable.Range(0, random.Next(0, 80)).Select(_ => (byte)random.Next('a', 'z' + 1)).ToArray()).ToArray();

            AssertRoundTrip(lengthPrefixed, binary, (o, p) => lengthPrefixed.Write(o, p), random);
            AssertRoundTrip(line, text, (o, p) => line.Write(o, p), random);
            AssertRoundTrip(delimiter, text, (o, p) => delimiter.Write(o, p), random);
        }
    }

    private static void AssertRoundTrip(IMessageFramer<ReadOnlySequence<byte>> framer, byte[][] payloads, Action<IBufferWriter<byte>, byte[]> write, Random random)
    {
        byte[] wire = Encode(payloads, write);
        Assert.Equal(payloads, ParseAll(framer, Segments.Of(Segments.RandomChunks(wire, random, 17))));
        Assert.Equal(payloads, ParseAll(framer, Segments.ByteAtATime(wire)));
    }

    internal static byte[] Encode(byte[][] payloads, Action<IBufferWriter<byte>, byte[]> write)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (byte[] payload in payloads)
        {
            write(output, payload);
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>Parses until the framer needs more; the input must be used up exactly.</summary>
    private static List<byte[]> ParseAll(IMessageFramer<ReadOnlySequence<byte>> framer, ReadOnlySequence<byte> input)
    {
        var messages = new List<byte[]>();
        while (framer.TryParse(ref input, out ReadOnlySequence<byte> message))
        {
            messages.Add(message.ToArray());
        }

        Assert.True(input.IsEmpty, $"{input.Length} bytes left unparsed");
        return messages;
    }

    /// <summary>One segment; two segments split at every point; one segment per byte.</summary>
    private static IEnumerable<ReadOnlySequence<byte>> EveryShape(byte[] wire)
    {
        yield return new ReadOnlySequence<byte>(wire);
        for (int split = 1; split < wire.Length; split++)
        {
            yield return Segments.Of(wire[..split], wire[split..]);
        }

        yield return Segments.ByteAtATime(wire);
    }
}
