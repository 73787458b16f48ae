#region docs:message-reader-loop
using System.Buffers;
using Transport.Framing;
#endregion

internal static class MessageReaderLoop
{
    public static async Task RunAsync(
        Microsoft.AspNetCore.Connections.ConnectionContext connection,
        Transport.Framing.IMessageFramer<System.Buffers.ReadOnlySequence<byte>> framer,
        CancellationToken cancellationToken)
    {
        #region docs:message-reader-loop
        var reader = new MessageReader<ReadOnlySequence<byte>>(connection.Transport.Input, framer);
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            while (reader.TryRead(out ReadOnlySequence<byte> message))
            {
                // handle; write replies to connection.Transport.Output
            }

            await connection.Transport.Output.FlushAsync(cancellationToken);
        }
        #endregion
    }
}
