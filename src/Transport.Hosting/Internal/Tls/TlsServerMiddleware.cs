using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal.Tls;

/// <summary>
/// The server side of TLS on one endpoint: the handshake, bounded by the handshake timeout; then the protocol reads
/// and writes the decrypted stream through the connection's <see cref="ConnectionContext.Transport"/>, and finds the
/// session on <see cref="ITlsHandshakeFeature"/> and <see cref="ITransportTlsFeature"/>.
/// </summary>
internal sealed class TlsServerMiddleware
{
    /// <summary>The <c>error.type</c> of a handshake that failed.</summary>
    public const string HandshakeFailed = "tls_handshake_failed";

    /// <summary>The <c>error.type</c> of a handshake the client did not finish within the handshake timeout.</summary>
    public const string HandshakeTimeout = "tls_handshake_timeout";

    private readonly ConnectionDelegate _next;
    private readonly string _endpoint;
    private readonly TimeSpan _handshakeTimeout;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly SniSelector _certificates;
    private readonly TlsMetrics.HandshakeTags _tags;

    public TlsServerMiddleware(ConnectionDelegate next, string endpoint, TlsSettings settings, SniSelector certificates,
        ILogger logger, TransportMetrics metrics, TimeProvider time)
    {
        _next = next;
        _endpoint = endpoint;
        _handshakeTimeout = settings.HandshakeTimeout;
        _certificates = certificates;
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _tags = TlsMetrics.TagsFor(endpoint);
    }

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        IDuplexPipe transport = connection.Transport;
        var transportStream = new TlsTransportStream(transport);
        var stream = new SslStream(transportStream, leaveInnerStreamOpen: true);
        await using (stream.ConfigureAwait(false))
        {
            string? hostName = await HandshakeAsync(connection, stream).ConfigureAwait(false);
            if (hostName is null)
            {
                return;
            }

            var feature = new TlsConnectionFeature(stream, hostName);
            connection.Features.Set<ITlsHandshakeFeature>(feature);
            connection.Features.Set<ITransportTlsFeature>(feature);
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                TlsLog.HandshakeCompleted(_logger, connection.ConnectionId, _endpoint, stream.SslProtocol, stream.NegotiatedCipherSuite,
                    stream.NegotiatedApplicationProtocol.ToString(), hostName);
            }

            var tls = new TlsDuplexPipe(stream, transportStream, connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool);
            connection.Transport = tls;
            try
            {
                await _next(connection).ConfigureAwait(false);
            }
            finally
            {
                await tls.CompleteAsync().ConfigureAwait(false);
                await CloseNotifyAsync(stream).ConfigureAwait(false);
                connection.Transport = transport;
            }
        }
    }

    /// <summary>The host name the client asked for (empty for none), or null when the handshake failed: the client's fault, logged and counted.</summary>
    private async Task<string?> HandshakeAsync(ConnectionContext connection, SslStream stream)
    {
        using var timeout = new CancellationTokenSource(_handshakeTimeout, _time);
        using CancellationTokenRegistration closed = connection.ConnectionClosed.UnsafeRegister(
            static state => ((CancellationTokenSource)state!).Cancel(), timeout);
        string hostName = "";
        long started = _metrics.Tls.HandshakeStarted(_tags);
        string? errorType = HandshakeFailed;
        try
        {
            await stream.AuthenticateAsServerAsync(
                (_, hello, state, _) =>
                {
                    hostName = hello.ServerName ?? "";
                    ServerCertificate certificate = ((SniSelector)state!).Select(hello.ServerName)
                        ?? throw new AuthenticationException($"No certificate for the server name '{hello.ServerName}' the client asked for.");
                    return ValueTask.FromResult(certificate.Options);
                },
                _certificates, timeout.Token).ConfigureAwait(false);
            errorType = null;
            return hostName;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !connection.ConnectionClosed.IsCancellationRequested)
        {
            errorType = HandshakeTimeout;
            _metrics.CountTlsHandshakeFailure(_endpoint, HandshakeTimeout);
            SetEndReason(connection);
            TlsLog.HandshakeTimedOut(_logger, connection.ConnectionId, _endpoint, _handshakeTimeout);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
        {
            _metrics.CountTlsHandshakeFailure(_endpoint, HandshakeFailed);
            SetEndReason(connection);
            TlsLog.HandshakeFailed(_logger, connection.ConnectionId, _endpoint, Describe(ex));
        }
        finally
        {
            _metrics.Tls.HandshakeEnded(_tags, started, errorType is null ? stream.SslProtocol : default, errorType);
        }

        return null;
    }

    /// <summary>The connection's duration is recorded with <c>error.type=tls_handshake_failed</c> (a timeout included).</summary>
    private static void SetEndReason(ConnectionContext connection)
    {
        if (connection is TransportConnection transport)
        {
            transport.EndReason = ConnectionEndReasons.TlsHandshakeFailed;
        }
    }

    /// <summary>Tells the client that no more data follows (TLS close_notify), if it is still there to hear it.</summary>
    private static async ValueTask CloseNotifyAsync(SslStream stream)
    {
        try
        {
            await stream.ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The client left first.
        }
    }

    private static string Describe(Exception exception) =>
        exception.InnerException is { } inner && exception is AuthenticationException
            ? exception.Message + " " + inner.Message
            : exception.Message;
}
