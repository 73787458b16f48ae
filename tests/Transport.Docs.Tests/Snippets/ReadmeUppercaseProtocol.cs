#region docs:readme-uppercase-protocol
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

public sealed class UppercaseProtocol : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        while (true)
        {
            ReadResult result = await input.ReadAsync();
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                Span<byte> target = output.GetSpan(segment.Length);
                Ascii.ToUpper(segment.Span, target, out int written);
                output.Advance(written);
            }

            FlushResult flush = await output.FlushAsync();
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || flush.IsCompleted)
            {
                break;   // peer closed its side / stopped reading
            }
        }
    }
}
#endregion
