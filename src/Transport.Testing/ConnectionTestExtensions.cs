using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Transport.Testing;

/// <summary>Client-side helpers over a connection's pipes, every await bounded by <see cref="TestTimeouts.Default"/>.</summary>
public static class ConnectionTestExtensions
{
    /// <summary>Writes and flushes <paramref name="data"/> (on a datagram connection: sends it as one datagram).</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="data">The bytes.</param>
    /// <returns>A task that completes when the bytes are flushed.</returns>
    /// <exception cref="InvalidOperationException">The peer no longer takes data.</exception>
    public static async Task SendAsync(this ConnectionContext connection, ReadOnlyMemory<byte> data)
    {
        ArgumentNullException.ThrowIfNull(connection);
        FlushResult flush = await connection.Transport.Output.WriteAsync(data).DefaultTimeout().ConfigureAwait(false);
        if (flush.IsCompleted)
        {
            throw new InvalidOperationException("The connection no longer takes data.");
        }
    }

    /// <summary>Completes the output: end of stream (FIN) for the peer.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns>A task that completes when the output is completed.</returns>
    public static Task CompleteOutputAsync(this ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.Transport.Output.CompleteAsync().DefaultTimeout();
    }

    /// <summary>Reads until exactly <paramref name="count"/> bytes arrived.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="count">How many bytes.</param>
    /// <returns>The bytes.</returns>
    /// <exception cref="EndOfStreamException">The stream ended first.</exception>
    public static async Task<byte[]> ReceiveExactlyAsync(this ConnectionContext connection, int count)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var received = new byte[count];
        int filled = 0;
        PipeReader input = connection.Transport.Input;
        while (filled < count)
        {
            ReadResult result = await input.ReadAsync().DefaultTimeout().ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            long take = Math.Min(buffer.Length, count - filled);
            buffer.Slice(0, take).CopyTo(received.AsSpan(filled));
            filled += (int)take;
            input.AdvanceTo(buffer.GetPosition(take));
            if (filled < count && result.IsCompleted)
            {
                throw new EndOfStreamException($"The stream ended after {filled} of {count} bytes.");
            }
        }

        return received;
    }

    /// <summary>Reads one result: on a datagram connection exactly one datagram; on a stream, whatever has arrived.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns>The bytes of that read; null when the input has ended.</returns>
    public static async Task<byte[]?> ReceiveOnceAsync(this ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeReader input = connection.Transport.Input;
        ReadResult result = await input.ReadAsync().DefaultTimeout().ConfigureAwait(false);
        if (result.IsCompleted && result.Buffer.IsEmpty)
        {
            input.AdvanceTo(result.Buffer.End);
            return null;
        }

        byte[] bytes = result.Buffer.ToArray();
        input.AdvanceTo(result.Buffer.End);
        return bytes;
    }

    /// <summary>Reads everything until the peer closes.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns>All bytes received.</returns>
    public static async Task<byte[]> ReceiveToEndAsync(this ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var all = new ArrayBufferWriter<byte>();
        PipeReader input = connection.Transport.Input;
        while (true)
        {
            ReadResult result = await input.ReadAsync().DefaultTimeout().ConfigureAwait(false);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                all.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return all.WrittenSpan.ToArray();
            }
        }
    }

    /// <summary>Random bytes for payload checks.</summary>
    /// <param name="count">How many.</param>
    /// <returns>The bytes.</returns>
    public static byte[] RandomBytes(int count)
    {
        byte[] bytes = new byte[count];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
