using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Transport.KeyValue.Tests;

/// <summary>
/// A minimal RESP2 client for tests: encodes commands as multibulk and reads replies, rendered as text:
/// <c>+OK</c> → "OK", <c>-ERR x</c> → "-ERR x", <c>:5</c> → ":5", a bulk string → its text, a null bulk → "(nil)",
/// an array → "[a, b]".
/// </summary>
internal static class Resp
{
    public static byte[] Command(params string[] parts)
    {
        var text = new StringBuilder().Append('*').Append(parts.Length).Append("\r\n");
        foreach (string part in parts)
        {
            text.Append('$').Append(Encoding.UTF8.GetByteCount(part)).Append("\r\n").Append(part).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public static async Task<string> CallAsync(this ConnectionContext connection, params string[] parts)
    {
        await connection.SendAsync(Command(parts));
        return await connection.ReadReplyAsync();
    }

    public static async Task<string> ReadReplyAsync(this ConnectionContext connection)
    {
        PipeReader input = connection.Transport.Input;
        while (true)
        {
            ReadResult result = await input.ReadAsync().DefaultTimeout();
            var reader = new SequenceReader<byte>(result.Buffer);
            if (TryParse(ref reader, out string? reply))
            {
                input.AdvanceTo(reader.Position);
                return reply;
            }

            if (result.IsCompleted)
            {
                throw new EndOfStreamException($"The connection ended before a whole reply: '{Encoding.UTF8.GetString(result.Buffer)}'");
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private static bool TryParse(ref SequenceReader<byte> reader, out string reply)
    {
        reply = "";
        if (!reader.TryRead(out byte type) || !reader.TryReadTo(out ReadOnlySequence<byte> lineBytes, "\r\n"u8))
        {
            return false;
        }

        string line = Encoding.UTF8.GetString(lineBytes);
        switch ((char)type)
        {
            case '+':
                reply = line;
                return true;
            case '-':
                reply = "-" + line;
                return true;
            case ':':
                reply = ":" + line;
                return true;
            case '$':
                int length = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
                if (length < 0)
                {
                    reply = "(nil)";
                    return true;
                }

                if (reader.Remaining < length + 2)
                {
                    return false;
                }

                reply = Encoding.UTF8.GetString(reader.UnreadSequence.Slice(0, length));
                reader.Advance(length + 2);
                return true;
            case '*':
                int count = int.Parse(line, System.Globalization.CultureInfo.InvariantCulture);
                var items = new List<string>();
                for (int i = 0; i < count; i++)
                {
                    if (!TryParse(ref reader, out string item))
                    {
                        return false;
                    }

                    items.Add(item);
                }

                reply = "[" + string.Join(", ", items) + "]";
                return true;
            default:
                throw new InvalidDataException($"Not a RESP reply type: '{(char)type}'");
        }
    }
}
