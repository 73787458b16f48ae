using System.Buffers;
using System.Buffers.Text;
using Transport.Framing;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// Cuts RESP2 requests out of the input: multibulk (<c>*2\r\n$3\r\nGET\r\n$1\r\nk\r\n</c>, what clients send) and
/// inline (<c>GET k\r\n</c>, what a person types into telnet). One instance per connection: it reuses its
/// argument array and a scratch buffer for arguments that span receive segments, so steady-state parsing does
/// not allocate.
/// </summary>
/// <remarks>Protocol errors use Redis's own wording and, like Redis, end the connection after the error reply.</remarks>
internal sealed class RespRequestFramer : IMessageFramer<RespCommand>
{
    // Redis's limits: PROTO_INLINE_MAX_SIZE for an inline request or a count line, and the largest multibulk count.
    private const int MaxInlineSize = 64 * 1024;
    private const int MaxMultibulkCount = 1024 * 1024;
    private const int MaxNumberLength = 20;

    private ReadOnlyMemory<byte>[] _arguments = new ReadOnlyMemory<byte>[8];
    private byte[] _scratch = [];
    private int _scratchUsed;

    public RespRequestFramer(int maxRequestSize)
    {
        MaxMessageSize = maxRequestSize;
    }

    public int MaxMessageSize { get; }

    public bool TryParse(ref ReadOnlySequence<byte> input, out RespCommand message)
    {
        message = default;
        if (input.IsEmpty)
        {
            return false;
        }

        _scratchUsed = 0;
        var reader = new SequenceReader<byte>(input);
        bool parsed = input.FirstSpan[0] == (byte)'*'
            ? TryParseMultibulk(ref reader, out int count)
            : TryParseInline(ref reader, out count);
        if (!parsed)
        {
            return false;
        }

        message = new RespCommand(_arguments, count);
        input = input.Slice(reader.Position);
        return true;
    }

    private static InvalidFrameException ProtocolError(string what) => new("Protocol error: " + what);

    private bool TryParseMultibulk(ref SequenceReader<byte> reader, out int count)
    {
        count = 0;
        reader.Advance(1);
        if (!TryReadNumberLine(ref reader, out long declared, "too big mbulk count string", "invalid multibulk length"))
        {
            return false;
        }

        if (declared > MaxMultibulkCount)
        {
            throw ProtocolError("invalid multibulk length");
        }

        for (int i = 0; i < declared; i++)
        {
            if (!reader.TryPeek(out byte marker))
            {
                return false;
            }

            if (marker != (byte)'$')
            {
                throw ProtocolError($"expected '$', got '{(char)marker}'");
            }

            reader.Advance(1);
            if (!TryReadNumberLine(ref reader, out long length, "too big bulk count string", "invalid bulk length"))
            {
                return false;
            }

            if (length < 0 || length > MaxMessageSize)
            {
                throw ProtocolError("invalid bulk length");
            }

            if (reader.Remaining < length + 2)
            {
                return false;
            }

            ReadOnlySequence<byte> value = reader.UnreadSequence.Slice(0, length);
            reader.Advance(length);
            if (!reader.IsNext("\r\n"u8, advancePast: true))
            {
                // Redis skips two bytes here whatever they are; a length that does not match the data is a broken
                // client, and resynchronising on whatever follows would run its bytes as commands.
                throw ProtocolError($"bulk string of {length} bytes not followed by CRLF (bulk length mismatch)");
            }

            AddArgument(i, value);
        }

        // *0 and *-1 are empty requests: consumed, and ignored by the command handler.
        count = (int)Math.Max(declared, 0);
        return true;
    }

    private bool TryReadNumberLine(ref SequenceReader<byte> reader, out long value, string tooLong, string invalid)
    {
        value = 0;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> digits, (byte)'\r', advancePastDelimiter: false))
        {
            if (reader.Remaining > MaxInlineSize)
            {
                throw ProtocolError(tooLong);
            }

            return false;
        }

        if (reader.Remaining < 2)
        {
            return false;
        }

        if (!reader.IsNext("\r\n"u8, advancePast: true) || digits.Length is 0 or > MaxNumberLength)
        {
            throw ProtocolError(invalid);
        }

        Span<byte> copy = stackalloc byte[MaxNumberLength];
        digits.CopyTo(copy);
        ReadOnlySpan<byte> text = copy[..(int)digits.Length];
        if (text[0] == (byte)'+' || !Utf8Parser.TryParse(text, out value, out int consumed) || consumed != text.Length)
        {
            throw ProtocolError(invalid);
        }

        return true;
    }

    private bool TryParseInline(ref SequenceReader<byte> reader, out int count)
    {
        count = 0;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n', advancePastDelimiter: true))
        {
            if (reader.Remaining > MaxInlineSize)
            {
                throw ProtocolError("too big inline request");
            }

            return false;
        }

        ReadOnlyMemory<byte> text = line.IsSingleSegment ? line.First : CopyToScratch(line);
        if (!text.IsEmpty && text.Span[^1] == (byte)'\r')
        {
            text = text[..^1];
        }

        count = SplitInline(text);
        return true;
    }

    /// <summary>Splits an inline request like Redis's sdssplitargs: blanks separate, "double" and 'single' quotes group.</summary>
    private int SplitInline(ReadOnlyMemory<byte> text)
    {
        ReadOnlySpan<byte> span = text.Span;
        int count = 0;
        int i = 0;
        while (true)
        {
            while (i < span.Length && IsBlank(span[i]))
            {
                i++;
            }

            if (i == span.Length)
            {
                return count;
            }

            if (span[i] is (byte)'"' or (byte)'\'')
            {
                i = ReadQuoted(text, i, count);
            }
            else
            {
                int start = i;
                while (i < span.Length && !IsBlank(span[i]))
                {
                    i++;
                }

                SetArgument(count, text[start..i]);
            }

            count++;
        }
    }

    private int ReadQuoted(ReadOnlyMemory<byte> text, int start, int index)
    {
        ReadOnlySpan<byte> span = text.Span;
        byte quote = span[start];
        int i = start + 1;
        int closing = -1;
        bool escaped = false;
        for (int j = i; j < span.Length; j++)
        {
            if (span[j] == (byte)'\\' && j + 1 < span.Length)
            {
                escaped = true;
                j++;
            }
            else if (span[j] == quote)
            {
                closing = j;
                break;
            }
        }

        // The closing quote must end the argument: followed by a blank or the end of the line.
        if (closing < 0 || (closing + 1 < span.Length && !IsBlank(span[closing + 1])))
        {
            throw ProtocolError("unbalanced quotes in request");
        }

        if (!escaped)
        {
            SetArgument(index, text[i..closing]);
            return closing + 1;
        }

        Span<byte> target = ReserveScratch(closing - i, out ReadOnlyMemory<byte> memory);
        int length = 0;
        for (int j = i; j < closing; j++)
        {
            byte b = span[j];
            if (b == (byte)'\\')
            {
                b = span[++j];
                if (quote == (byte)'"')
                {
                    if (b == (byte)'x' && j + 2 < closing && byte.TryParse(span.Slice(j + 1, 2), System.Globalization.NumberStyles.HexNumber, null, out byte hex))
                    {
                        b = hex;
                        j += 2;
                    }
                    else
                    {
                        b = b switch
                        {
                            (byte)'n' => (byte)'\n',
                            (byte)'r' => (byte)'\r',
                            (byte)'t' => (byte)'\t',
                            (byte)'b' => (byte)'\b',
                            (byte)'a' => (byte)'\a',
                            _ => b,
                        };
                    }
                }
                else if (b != (byte)'\'')
                {
                    target[length++] = (byte)'\\';
                }
            }

            target[length++] = b;
        }

        SetArgument(index, memory[..length]);
        return closing + 1;
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or 0;

    private void AddArgument(int index, in ReadOnlySequence<byte> value) =>
        SetArgument(index, value.IsSingleSegment ? value.First : CopyToScratch(value));

    private void SetArgument(int index, ReadOnlyMemory<byte> value)
    {
        if (index == _arguments.Length)
        {
            Array.Resize(ref _arguments, _arguments.Length * 2);
        }

        _arguments[index] = value;
    }

    private ReadOnlyMemory<byte> CopyToScratch(in ReadOnlySequence<byte> value)
    {
        Span<byte> target = ReserveScratch((int)value.Length, out ReadOnlyMemory<byte> memory);
        value.CopyTo(target);
        return memory;
    }

    private Span<byte> ReserveScratch(int length, out ReadOnlyMemory<byte> memory)
    {
        if (_scratch.Length - _scratchUsed < length)
        {
            // Arguments already taken from the old buffer keep it alive until this request is handled.
            _scratch = new byte[Math.Max(length, Math.Max(_scratch.Length * 2, 256))];
            _scratchUsed = 0;
        }

        memory = _scratch.AsMemory(_scratchUsed, length);
        _scratchUsed += length;
        return _scratch.AsSpan(_scratchUsed - length, length);
    }
}
