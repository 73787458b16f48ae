using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Runtime.CompilerServices;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// The decrypted side of a TLS session as the pipes a protocol reads and writes. Reads wait with zero-byte reads, so
/// an idle connection holds no pipe buffer. A flush encrypts everything written since the last one, then sends it
/// with one flush of the transport (see <see cref="TlsTransportStream"/>).
/// </summary>
internal sealed class TlsDuplexPipe : IDuplexPipe
{
    private const int MinimumBufferSize = 4096;

    public TlsDuplexPipe(SslStream stream, TlsTransportStream transport, MemoryPool<byte>? pool)
    {
        Input = PipeReader.Create(stream, new StreamPipeReaderOptions(pool, MinimumBufferSize, MinimumBufferSize / 4, leaveOpen: true, useZeroByteReads: true));
        Output = new CoalescingWriter(PipeWriter.Create(stream, new StreamPipeWriterOptions(pool, MinimumBufferSize, leaveOpen: true)), transport);
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

    private sealed class CoalescingWriter(PipeWriter inner, TlsTransportStream transport) : PipeWriter
    {
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes) => inner.Advance(bytes);

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            // The protocol's last bytes: written (and sent) outside a coalesced flush.
            await inner.CompleteAsync(exception).ConfigureAwait(false);
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            FlushResult result;
            transport.Coalescing = true;
            try
            {
                result = await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                transport.Coalescing = false;
            }

            FlushResult sent = await transport.FlushTransportAsync(cancellationToken).ConfigureAwait(false);
            return sent.IsCompleted || sent.IsCanceled ? new FlushResult(sent.IsCanceled, sent.IsCompleted || result.IsCompleted) : result;
        }
    }
}
