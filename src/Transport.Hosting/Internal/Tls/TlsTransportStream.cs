using System.Buffers;
using System.IO.Pipelines;
using Transport.Internal;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// The transport under <see cref="System.Net.Security.SslStream"/>. Outside a protocol's flush every record is written
/// and flushed at once (the handshake, close_notify). During one (<see cref="Coalescing"/>), the records of that flush
/// only go into the transport's output, and <see cref="TlsDuplexPipe"/> flushes them together once they are all
/// encrypted: one send for the whole flush instead of one per 4 KiB record.
/// </summary>
internal sealed class TlsTransportStream(IDuplexPipe transport) : DuplexPipeStream(transport)
{
    private readonly PipeWriter _output = transport.Output;

    /// <summary>Set by the decrypted output's flush, which SslStream's one-writer rule already serializes.</summary>
    public bool Coalescing { get; set; }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Coalescing)
        {
            return base.WriteAsync(buffer, cancellationToken);
        }

        // Bounded by the one flush being encrypted; the flush that follows applies the transport's back-pressure.
        _output.Write(buffer.Span);
        return default;
    }

    /// <summary>Sends what the coalesced writes left in the transport's output.</summary>
    public ValueTask<FlushResult> FlushTransportAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);
}
