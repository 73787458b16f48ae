#region docs:upper-line-protocol
using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Transport.Framing;

public sealed class UpperLineProtocol : FramedProtocol<ReadOnlySequence<byte>>
{
    private static readonly LineFramer Lines = new(maxMessageSize: 4096);

    protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Lines;

    protected override ValueTask OnMessageAsync(ConnectionContext connection, ReadOnlySequence<byte> line)
    {
        Span<byte> upper = stackalloc byte[(int)line.Length];
        line.CopyTo(upper);
        Ascii.ToUpperInPlace(upper, out _);
        Lines.Write(connection.Transport.Output, upper);   // not flushed: one flush per batch, done for you
        return ValueTask.CompletedTask;
    }
}
#endregion
