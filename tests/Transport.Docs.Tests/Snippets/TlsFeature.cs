#region docs:tls-feature
using Transport;
#endregion

internal static class TlsFeature
{
    public static void Show(Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        #region docs:tls-feature
        var tls = connection.Features.Get<ITransportTlsFeature>();   // null on a plain connection
        if (tls?.ClientCertificate is { } client)
        {
            Console.WriteLine($"mutual TLS with {client.Subject}");
        }
        #endregion
    }
}
