#region docs:proxy-protocol-sender
using System.Net;
using Microsoft.AspNetCore.Connections;
using Transport;
#endregion

internal static class ProxyProtocolSender
{
    public static async Task ConnectAsync(Transport.Hosting.TransportConnectionFactory factory)
    {
        #region docs:proxy-protocol-sender
        var client = new IPEndPoint(IPAddress.Parse("203.0.113.7"), 51234);   // the address the server should see
        var server = new IPEndPoint(IPAddress.Loopback, 6381);
        await using ConnectionContext connection = await factory.ConnectAsync(server,
            ProxyProtocolHeader.CreateV2(client, server));                     // or CreateV1(client, server), CreateV2Local()
        #endregion
    }
}
