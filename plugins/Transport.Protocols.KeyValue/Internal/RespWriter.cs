using System.Buffers;
using System.Text;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>RESP2 replies, written straight into the output's memory.</summary>
internal static class RespWriter
{
    public static ReadOnlySpan<byte> Ok => "+OK\r\n"u8;

    public static ReadOnlySpan<byte> Pong => "+PONG\r\n"u8;

    public static ReadOnlySpan<byte> NullBulk => "$-1\r\n"u8;

    public static ReadOnlySpan<byte> EmptyArray => "*0\r\n"u8;

    public static void Raw(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);

    /// <summary><c>-{message}\r\n</c>; the message is one line (line breaks become spaces).</summary>
    public static void Error(IBufferWriter<byte> output, string message)
    {
        int length = Encoding.UTF8.GetByteCount(message);
        Span<byte> span = output.GetSpan(length + 3);
        span[0] = (byte)'-';
        int written = Encoding.UTF8.GetBytes(message, span[1..]);
        foreach (ref byte b in span.Slice(1, written))
        {
            if (b is (byte)'\r' or (byte)'\n')
            {
                b = (byte)' ';
            }
        }

        span[written + 1] = (byte)'\r';
        span[written + 2] = (byte)'\n';
        output.Advance(written + 3);
    }

    public static void Integer(IBufferWriter<byte> output, long value) => Prefixed(output, (byte)':', value);

    public static void ArrayHeader(IBufferWriter<byte> output, int count) => Prefixed(output, (byte)'*', count);

    public static void Bulk(IBufferWriter<byte> output, ReadOnlySpan<byte> value)
    {
        // "$" + up to 10 digits + CRLF + value + CRLF in one span when it fits, else in pieces.
        int total = value.Length + 16;
        if (total <= 4096)
        {
            Span<byte> span = output.GetSpan(total);
            span[0] = (byte)'$';
            value.Length.TryFormat(span[1..], out int digits);
            int at = digits + 1;
            span[at++] = (byte)'\r';
            span[at++] = (byte)'\n';
            value.CopyTo(span[at..]);
            at += value.Length;
            span[at++] = (byte)'\r';
            span[at++] = (byte)'\n';
            output.Advance(at);
            return;
        }

        Prefixed(output, (byte)'$', value.Length);
        output.Write(value);
        output.Write("\r\n"u8);
    }

    private static void Prefixed(IBufferWriter<byte> output, byte prefix, long value)
    {
        Span<byte> span = output.GetSpan(24);
        span[0] = prefix;
        value.TryFormat(span[1..], out int digits);
        span[digits + 1] = (byte)'\r';
        span[digits + 2] = (byte)'\n';
        output.Advance(digits + 3);
    }
}
