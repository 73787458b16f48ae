using System.Buffers;
using System.Globalization;
using System.Text;
using Transport.Framing;
using Transport.Protocols.KeyValue;
using Transport.Protocols.KeyValue.Internal;

namespace Transport.Fuzz;

/// <summary>
/// The KeyValue server's RESP request framer, one instance per connection as the server uses it, under
/// MessageReader's limits: the same requests whether the bytes come contiguous, in segments or a chunk at a
/// time; only <see cref="InvalidFrameException"/> escapes; a request written back as a multibulk request parses
/// to the same arguments.
/// </summary>
internal static class RespTarget
{
    public static void Run(ReadOnlySpan<byte> bytes)
    {
        var input = new FuzzInput(bytes);
        byte size = input.Choice();
        int maxRequestSize = size == 0 ? new KeyValueProtocolOptions().MaxRequestSize : 1024 + (size * 16);
        byte seed = input.Choice();
        var checks = new FramerChecks<RespCommand>(
            () => new RespRequestFramer(maxRequestSize), Snapshot, null, command => Multibulk(command, maxRequestSize), strict: false);
        checks.Run(input.Rest, seed);
    }

    private static byte[][] Snapshot(RespCommand command)
    {
        Check.That(command.Count >= 0, "a negative argument count");
        var parts = new byte[command.Count][];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = command[i].ToArray();
        }

        return parts;
    }

    /// <summary>The request as a client sends it; null when that form is over the limit (inline is shorter).</summary>
    private static byte[]? Multibulk(RespCommand command, int maxRequestSize)
    {
        var output = new ArrayBufferWriter<byte>();
        Ascii(output, $"*{command.Count}\r\n");
        for (int i = 0; i < command.Count; i++)
        {
            Ascii(output, $"${command[i].Length}\r\n");
            output.Write(command[i]);
            output.Write("\r\n"u8);
        }

        return output.WrittenCount <= maxRequestSize ? output.WrittenSpan.ToArray() : null;
    }

    private static void Ascii(ArrayBufferWriter<byte> output, FormattableString text) =>
        output.Write(Encoding.ASCII.GetBytes(text.ToString(CultureInfo.InvariantCulture)));
}
