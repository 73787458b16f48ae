using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// The decrypted side of a TLS session as the pipes a protocol reads and writes. Reads wait with zero-byte reads, so
/// an idle connection holds no pipe buffer.
/// </summary>
internal sealed class TlsDuplexPipe : IDuplexPipe
{
    private const int MinimumBufferSize = 4096;

    public TlsDuplexPipe(SslStream stream, MemoryPool<byte>? pool)
    {
        Input = PipeReader.Create(stream, new StreamPipeReaderOptions(pool, MinimumBufferSize, MinimumBufferSize / 4, leaveOpen: true, useZeroByteReads: true));
        Output = PipeWriter.Create(stream, new StreamPipeWriterOptions(pool, MinimumBufferSize, leaveOpen: true));
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>Ends both pipes (flushing what the protocol wrote) if the protocol has not; never throws.</summary>
    public async ValueTask CompleteAsync()
    {
        try
        {
            await Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The peer is gone: nothing more can be sent.
        }

        await Input.CompleteAsync().ConfigureAwait(false);
    }
}
