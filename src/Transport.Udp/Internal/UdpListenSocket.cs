using System.Net;
using System.Net.Sockets;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>Opens and binds the one socket a UDP listener shares among its sessions.</summary>
internal static class UdpListenSocket
{
    public static Socket Bind(UdpEndPoint endpoint, UdpTransportOptions options, bool reusePort)
    {
        var ip = (IPEndPoint)endpoint.Address;
        var socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (ip.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            if (reusePort)
            {
                ReusePort.Enable(socket);
            }

            socket.ReceiveBufferSize = options.SocketReceiveBufferSize;
            socket.Bind(ip);
            return socket;
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw BindErrors.ToException(endpoint.ToString()!, ex);
        }
    }
}
