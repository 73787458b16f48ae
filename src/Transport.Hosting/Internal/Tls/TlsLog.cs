using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.Tls;

internal static partial class TlsLog
{
    [LoggerMessage(40, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' closed: the TLS handshake failed: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, string connectionId, string endpoint, string reason);

    [LoggerMessage(41, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' closed: the client did not complete the TLS handshake within {Timeout}.")]
    public static partial void HandshakeTimedOut(ILogger logger, string connectionId, string endpoint, TimeSpan timeout);

    [LoggerMessage(42, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}': TLS handshake completed ({Protocol}, {CipherSuite}, ALPN '{ApplicationProtocol}', SNI '{HostName}').")]
    public static partial void HandshakeCompleted(ILogger logger, string connectionId, string endpoint, System.Security.Authentication.SslProtocols protocol,
        System.Net.Security.TlsCipherSuite cipherSuite, string applicationProtocol, string hostName);

    [LoggerMessage(43, LogLevel.Information, "Endpoint '{Endpoint}' serves TLS with certificate {Subject} (thumbprint {Thumbprint}, valid until {NotAfter:u}).")]
    public static partial void CertificateLoaded(ILogger logger, string endpoint, string subject, string thumbprint, DateTime notAfter);
}
