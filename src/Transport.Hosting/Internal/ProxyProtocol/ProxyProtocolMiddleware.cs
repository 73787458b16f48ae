using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal.ProxyProtocol;

/// <summary>
/// The first middleware of an endpoint with <c>ProxyProtocol</c>: reads the header before anything else (TLS included)
/// sees a byte, then hands on the connection with <c>RemoteEndPoint</c> and
/// <c>LocalEndPoint</c> set to the client's and the socket's own kept in
/// <see cref="IProxyProtocolFeature"/>. Exactly the header's bytes are consumed: what followed it in the same read goes on
/// to the protocol untouched. A connection whose header is untrusted, incomplete, too long, malformed, fails its checksum
/// or does not arrive within the timeout is closed here: the client's fault, counted and logged at Debug.
/// </summary>
internal sealed class ProxyProtocolMiddleware
{
    public const string Name = "proxy-protocol";

    private readonly ConnectionDelegate _next;
    private readonly string _endpoint;
    private readonly ProxyProtocolSettings _settings;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly TimeProvider _time;

    public ProxyProtocolMiddleware(ConnectionDelegate next, string endpoint, ProxyProtocolSettings settings, ILogger logger, TransportMetrics metrics, TimeProvider time)
    {
        _next = next;
        _endpoint = endpoint;
        _settings = settings;
        _logger = logger;
        _metrics = metrics;
        _time = time;
    }

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        EndPoint? remote = connection.RemoteEndPoint;
        bool trusted = _settings.IsTrusted(remote);
        if (!trusted && _settings.Mode == ProxyProtocolMode.Required)
        {
            Reject(connection, "proxy_protocol_untrusted", "the connection is not from a trusted proxy and Mode is Required");
            return;
        }

        ProxyProtocolReadResult result;
        // Only the header timeout cancels this read. Not ConnectionClosed: it fires when the peer half-closes, and a
        // client that sent its header, its request and FIN before this read began must still be read (its bytes are in
        // the input, which then ends); an abort ends the read with its own exception.
        using (var timeout = new CancellationTokenSource(_settings.HeaderTimeout, _time))
        {
            try
            {
                result = await ReadHeaderAsync(connection.Transport.Input, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                Reject(connection, "proxy_protocol_timeout", $"no complete header within the HeaderTimeout of {_settings.HeaderTimeout}");
                return;
            }
        }

        switch (result.Status)
        {
            case ProxyProtocolStatus.Complete when trusted:
                Accept(connection, result.Header!);
                break;
            case ProxyProtocolStatus.Complete:
                Reject(connection, "proxy_protocol_untrusted", "a header from an address that is not in TrustedProxies");
                return;
            case ProxyProtocolStatus.NotProxyProtocol when _settings.Mode == ProxyProtocolMode.Optional:
                if (_logger.IsEnabled(LogLevel.Debug))
                {
                    ProxyProtocolLog.NoHeader(_logger, connection.ConnectionId, _endpoint, remote);
                }

                break;
            case ProxyProtocolStatus.NotProxyProtocol:
                Reject(connection, "proxy_protocol_missing", "no header, and Mode is Required");
                return;
            case ProxyProtocolStatus.Incomplete:
                Reject(connection, "proxy_protocol_incomplete", "the connection ended inside the header");
                return;
            case ProxyProtocolStatus.TooLong:
                Reject(connection, "proxy_protocol_too_long", result.Error!);
                return;
            case ProxyProtocolStatus.ChecksumMismatch:
                Reject(connection, "proxy_protocol_checksum_mismatch", result.Error!);
                return;
            default:
                Reject(connection, "proxy_protocol_malformed", result.Error ?? "a malformed header");
                return;
        }

        await _next(connection).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads until the bytes decide; consumes the header when there is one and nothing otherwise. An empty connection that
    /// ends is <see cref="ProxyProtocolStatus.NotProxyProtocol"/>: it sent no header, and is not a partial one.
    /// </summary>
    private async ValueTask<ProxyProtocolReadResult> ReadHeaderAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = read.Buffer;
            ProxyProtocolReadResult result = ProxyProtocolHeader.TryRead(buffer, _settings.MaxHeaderBytes);
            if (result.Status == ProxyProtocolStatus.Incomplete && !read.IsCompleted)
            {
                input.AdvanceTo(buffer.Start, buffer.End);
                continue;
            }

            if (result.Status == ProxyProtocolStatus.Complete)
            {
                input.AdvanceTo(buffer.GetPosition(result.Length));
                return result;
            }

            // Left for the protocol to read, from its first byte.
            input.AdvanceTo(buffer.Start);
            return result.Status == ProxyProtocolStatus.Incomplete && buffer.IsEmpty
                ? new ProxyProtocolReadResult(ProxyProtocolStatus.NotProxyProtocol, null, 0, null)
                : result;
        }
    }

    private void Accept(ConnectionContext connection, ProxyProtocolHeader header)
    {
        EndPoint? socketRemote = connection.RemoteEndPoint;
        EndPoint? socketLocal = connection.LocalEndPoint;
        connection.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(header, socketRemote, socketLocal));
        if (!header.IsLocal)
        {
            connection.RemoteEndPoint = header.SourceEndPoint;
            connection.LocalEndPoint = header.DestinationEndPoint;
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            ProxyProtocolLog.HeaderRead(_logger, connection.ConnectionId, _endpoint, header.Version, socketRemote, connection.RemoteEndPoint,
                connection.LocalEndPoint, header.IsLocal ? " (local: the connection's own addresses)" : "");
        }
    }

    private void Reject(ConnectionContext connection, string errorType, string reason)
    {
        _metrics.CountProxyProtocolRejected(_endpoint, errorType);
        if (connection is TransportConnection transport)
        {
            transport.EndReason = errorType;
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            ProxyProtocolLog.Rejected(_logger, connection.ConnectionId, _endpoint, connection.RemoteEndPoint, reason, errorType);
        }
    }
}
