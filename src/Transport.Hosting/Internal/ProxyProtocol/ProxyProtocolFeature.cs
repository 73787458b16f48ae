using System.Net;

namespace Transport.Hosting.Internal.ProxyProtocol;

internal sealed class ProxyProtocolFeature(ProxyProtocolHeader header, EndPoint? socketRemoteEndPoint, EndPoint? socketLocalEndPoint) : IProxyProtocolFeature
{
    public ProxyProtocolHeader Header { get; } = header;

    public EndPoint? SocketRemoteEndPoint { get; } = socketRemoteEndPoint;

    public EndPoint? SocketLocalEndPoint { get; } = socketLocalEndPoint;
}
