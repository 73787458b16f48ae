#region docs:proxy-protocol-feature
using Transport;
#endregion

internal static class ProxyProtocolFeature
{
    public static void Show(Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        #region docs:proxy-protocol-feature
        Console.WriteLine($"client {connection.RemoteEndPoint}");            // the client's own address, from the header
        if (connection.Features.Get<IProxyProtocolFeature>() is { } proxy)    // null without a header
        {
            ProxyProtocolHeader header = proxy.Header;
            Console.WriteLine($"via {proxy.SocketRemoteEndPoint}, PROXY v{header.Version}, local check: {header.IsLocal}");
            Console.WriteLine($"ALPN {header.ApplicationProtocol}, authority {header.Authority}, TLS {header.Ssl?.IsTls}");
            if (header.TryGetTlv(0xE0, out ReadOnlyMemory<byte> custom))      // a TLV of your own (0xE0-0xEF)
            {
                Console.WriteLine($"custom TLV: {custom.Length} bytes");
            }
        }
        #endregion
    }
}
