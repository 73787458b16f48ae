using System.Buffers;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Transport.Framing;
using Transport.Protocols.KeyValue;
using Transport.Protocols.KeyValue.Internal;
using Transport.Framing.Tests;

namespace Transport.Framing.Benchmarks;

/// <summary>
/// Each built-in framer parsing 100 messages per invocation from a buffer, single-segment and cut into 7-byte
/// segments (the worst realistic case: every message spans segments). Figures are per message.
/// </summary>
[MemoryDiagnoser]
public class FramerBenchmarks
{
    private const int Messages = 100;
    private static readonly LengthPrefixedFramer LengthPrefixed = new(4);
    private static readonly LineFramer Line = new();
    private static readonly DelimiterFramer Delimiter = new("\r\n\r\n"u8);
    private static readonly FixedSizeFramer FixedSize = new(32);
    private static readonly FixedHeaderFramer FixedHeader = new(4, static header => BinaryPrimitives.ReadUInt16BigEndian(header[2..]));
    private readonly RespRequestFramer _resp = new(512 * 1024);

    private ReadOnlySequence<byte> _lengthPrefixed;
    private ReadOnlySequence<byte> _line;
    private ReadOnlySequence<byte> _delimiter;
    private ReadOnlySequence<byte> _fixedSize;
    private ReadOnlySequence<byte> _fixedHeader;
    private ReadOnlySequence<byte> _resp3;

    [Params(false, true)]
    public bool MultiSegment { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        byte[] payload = "a 32-byte payload for benchmarks"u8.ToArray();
        _lengthPrefixed = Build(o => LengthPrefixed.Write(o, payload));
        _line = Build(o => Line.Write(o, payload));
        _delimiter = Build(o => Delimiter.Write(o, payload));
        _fixedSize = Build(o => FixedSize.Write(o, payload));
        _fixedHeader = Build(o =>
        {
            o.Write(new byte[] { 1, 0, 0, 32 });
            o.Write(payload);
        });
        _resp3 = Build(o => o.Write("*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n"u8));
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public long LengthPrefixed4() => Parse(LengthPrefixed, _lengthPrefixed);

    [Benchmark(OperationsPerInvoke = Messages)]
    public long Lines() => Parse(Line, _line);

    [Benchmark(OperationsPerInvoke = Messages)]
    public long Delimiter4() => Parse(Delimiter, _delimiter);

    [Benchmark(OperationsPerInvoke = Messages)]
    public long FixedSize32() => Parse(FixedSize, _fixedSize);

    [Benchmark(OperationsPerInvoke = Messages)]
    public long FixedHeader4() => ParseFrames(FixedHeader, _fixedHeader);

    [Benchmark(OperationsPerInvoke = Messages)]
    public long RespSetCommand()
    {
        ReadOnlySequence<byte> input = _resp3;
        long total = 0;
        while (_resp.TryParse(ref input, out RespCommand command))
        {
            total += command[2].Length;
        }

        return total;
    }

    private static long Parse(IMessageFramer<ReadOnlySequence<byte>> framer, ReadOnlySequence<byte> input)
    {
        long total = 0;
        while (framer.TryParse(ref input, out ReadOnlySequence<byte> message))
        {
            total += message.Length;
        }

        return total;
    }

    private static long ParseFrames(FixedHeaderFramer framer, ReadOnlySequence<byte> input)
    {
        long total = 0;
        while (framer.TryParse(ref input, out FixedHeaderFrame frame))
        {
            total += frame.Body.Length;
        }

        return total;
    }

    private ReadOnlySequence<byte> Build(Action<IBufferWriter<byte>> writeOne)
    {
        var output = new ArrayBufferWriter<byte>();
        for (int i = 0; i < Messages; i++)
        {
            writeOne(output);
        }

        byte[] bytes = output.WrittenSpan.ToArray();
        return MultiSegment ? Segments.Of([.. bytes.Chunk(7)]) : new ReadOnlySequence<byte>(bytes);
    }
}
