using System.Buffers.Text;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>Integers as Redis reads and writes them: plain decimal, optional minus, no plus, no blanks.</summary>
internal static class RespNumbers
{
    public static bool TryParseInt64(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        return text.Length is > 0 and <= 20 && text[0] != (byte)'+'
            && Utf8Parser.TryParse(text, out value, out int consumed) && consumed == text.Length
            && (text.Length == 1 || text[0] != (byte)'0') && !(text.Length > 1 && text[0] == (byte)'-' && text[1] == (byte)'0');
    }

    public static byte[] Format(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        value.TryFormat(digits, out int written);
        return digits[..written].ToArray();
    }
}
