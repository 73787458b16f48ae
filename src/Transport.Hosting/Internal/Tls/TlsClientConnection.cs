using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Transport.Internal;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// A client connection after its TLS handshake: the same connection, read and written through the TLS session.
/// Disposing it says goodbye (close_notify), then disposes the connection underneath.
/// </summary>
internal sealed class TlsClientConnection : ConnectionContext
{
    private readonly ConnectionContext _inner;
    private readonly SslStream _stream;
    private readonly TlsDuplexPipe _pipe;
    private int _disposed;

    private TlsClientConnection(ConnectionContext inner, SslStream stream, TlsTransportStream transport)
    {
        _inner = inner;
        _stream = stream;
        _pipe = new TlsDuplexPipe(stream, transport, inner.Features.Get<IMemoryPoolFeature>()?.MemoryPool);
        Transport = _pipe;
        var feature = new TlsConnectionFeature(stream, stream.TargetHostName);
        inner.Features.Set<ITlsHandshakeFeature>(feature);
        inner.Features.Set<ITransportTlsFeature>(feature);
    }

    public override string ConnectionId
    {
        get => _inner.ConnectionId;
        set => _inner.ConnectionId = value;
    }

    public override IFeatureCollection Features => _inner.Features;

    public override IDictionary<object, object?> Items
    {
        get => _inner.Items;
        set => _inner.Items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _inner.ConnectionClosed;
        set => _inner.ConnectionClosed = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => _inner.LocalEndPoint;
        set => _inner.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _inner.RemoteEndPoint;
        set => _inner.RemoteEndPoint = value;
    }

    /// <summary>Runs the client handshake over <paramref name="connection"/>; on failure disposes it and throws.</summary>
    public static async ValueTask<ConnectionContext> AuthenticateAsync(ConnectionContext connection, SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var transport = new TlsTransportStream(connection.Transport);
        var stream = new SslStream(transport, leaveInnerStreamOpen: true);
        try
        {
            await stream.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            return new TlsClientConnection(connection, stream, transport);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public override void Abort(ConnectionAbortedException abortReason) => _inner.Abort(abortReason);

    public override void Abort() => _inner.Abort();

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await DisposeOnceAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task DisposeOnceAsync()
    {
        await _pipe.CompleteAsync().ConfigureAwait(false);
        try
        {
            await _stream.ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The server left first.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        await _inner.DisposeAsync().ConfigureAwait(false);
    }
}
