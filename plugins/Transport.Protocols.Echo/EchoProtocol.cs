using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Transport.Protocols.Echo;

/// <summary>
/// The echo protocol (RFC 862): sends back every byte it receives, in order, until the peer closes its
/// side; then it finishes sending and closes. Register it with <c>AddProtocol&lt;EchoProtocol&gt;("echo")</c>.
/// </summary>
public sealed class EchoProtocol : ConnectionHandler
{
    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        while (true)
        {
            ReadResult result = await input.ReadAsync().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (result.IsCompleted && buffer.IsEmpty)
            {
                // End of input with nothing left. Not flushing here matters on datagram transports, where a
                // flush sends a datagram even when it is empty.
                break;
            }

            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                output.Write(segment.Span);
            }

            // Flush before releasing the input: the bytes stay accounted to this connection until they are on their way.
            FlushResult flush = await output.FlushAsync().ConfigureAwait(false);
            input.AdvanceTo(buffer.End);
            if (result.IsCompleted || flush.IsCompleted)
            {
                break;
            }
        }
    }
}
