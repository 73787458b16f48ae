#region docs:netstring-framer
using System.Buffers;
using System.Buffers.Text;
using Transport.Framing;

public sealed class NetstringFramer : IMessageFramer<ReadOnlySequence<byte>>
{
    public int MaxMessageSize => 4096;

    public bool TryParse(ref ReadOnlySequence<byte> input, out ReadOnlySequence<byte> message)
    {
        message = default;
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> digits, (byte)':'))
        {
            return false;                                   // the reader fails it past MaxMessageSize
        }

        Span<byte> text = stackalloc byte[10];
        if (digits.Length is 0 or > 10 || !Utf8Parser.TryParse(text[..CopyTo(digits, text)], out int length, out _)
            || length < 0 || length > MaxMessageSize)
        {
            throw new InvalidFrameException("Invalid netstring length.");
        }

        if (reader.Remaining < length + 1)
        {
            return false;
        }

        message = reader.UnreadSequence.Slice(0, length);
        reader.Advance(length);
        if (!reader.IsNext((byte)',', advancePast: true))
        {
            throw new InvalidFrameException("A netstring must end with ','.");
        }

        input = input.Slice(reader.Position);
        return true;
    }

    private static int CopyTo(in ReadOnlySequence<byte> digits, Span<byte> text)
    {
        digits.CopyTo(text);
        return (int)digits.Length;
    }
}
#endregion
