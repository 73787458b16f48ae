#region docs:tls-client
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
#endregion

internal static class TlsClient
{
    public static async Task ConnectAsync(Transport.Hosting.TransportConnectionFactory factory, X509Certificate2 testCertificate,
        X509Certificate2 clientCertificate)
    {
        #region docs:tls-client
        await using ConnectionContext connection = await factory.ConnectAsync("tcp://127.0.0.1:7443", new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",                                    // checked against the certificate, sent as SNI
            RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == testCertificate.Thumbprint,
            ClientCertificates = [clientCertificate],                    // mutual TLS
            ApplicationProtocols = [new SslApplicationProtocol("echo/1")],
        });
        #endregion
    }
}
