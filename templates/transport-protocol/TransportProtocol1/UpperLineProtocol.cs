using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Transport.Framing;

namespace TransportProtocol1;

/// <summary>
/// A line protocol: every line received is sent back upper-cased. Replace the framer and
/// <see cref="OnMessageAsync"/> with your own; register it with <c>AddProtocol&lt;UpperLineProtocol&gt;("upper")</c>.
/// </summary>
public sealed class UpperLineProtocol : FramedProtocol<ReadOnlySequence<byte>>
{
    private static readonly LineFramer Lines = new(maxMessageSize: 4096);

    /// <inheritdoc />
    protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Lines;

    /// <inheritdoc />
    protected override ValueTask OnMessageAsync(ConnectionContext connection, ReadOnlySequence<byte> line)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Span<byte> upper = stackalloc byte[(int)line.Length];
        line.CopyTo(upper);
        Ascii.ToUpperInPlace(upper, out _);
        Lines.Write(connection.Transport.Output, upper);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    protected override ValueTask OnInvalidFrameAsync(ConnectionContext connection, InvalidFrameException exception)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Lines.Write(connection.Transport.Output, "ERROR line too long"u8);
        return ValueTask.CompletedTask;
    }
}
