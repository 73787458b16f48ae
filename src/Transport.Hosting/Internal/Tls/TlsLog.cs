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

    [LoggerMessage(44, LogLevel.Information, "Endpoint '{Endpoint}': the certificate files changed; new handshakes use {Subject} (thumbprint {Thumbprint}, valid until {NotAfter:u}). Open connections are not affected.")]
    public static partial void CertificateReloaded(ILogger logger, string endpoint, string subject, string thumbprint, DateTime notAfter);

    [LoggerMessage(45, LogLevel.Warning, "Endpoint '{Endpoint}': the changed certificate cannot be used ({Reason}); new handshakes keep using thumbprint {Thumbprint}.")]
    public static partial void CertificateReloadFailed(ILogger logger, string endpoint, string reason, string thumbprint);

    [LoggerMessage(46, LogLevel.Error, "Endpoint '{Endpoint}': reloading the certificate failed; new handshakes keep using thumbprint {Thumbprint}.")]
    public static partial void CertificateReloadFaulted(ILogger logger, string endpoint, string thumbprint, Exception exception);

    [LoggerMessage(47, LogLevel.Warning, "Endpoint '{Endpoint}': watching {Directory} for certificate changes failed ({Reason}); a changed certificate may not be noticed until restart.")]
    public static partial void CertificateWatchFailed(ILogger logger, string endpoint, string directory, string reason);
}
