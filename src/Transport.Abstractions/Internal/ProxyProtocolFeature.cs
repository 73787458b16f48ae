using System.Net;

namespace Transport.Internal;

internal sealed class ProxyProtocolFeature(ProxyProtocolHeader header, EndPoint? socketRemoteEndPoint, EndPoint? socketLocalEndPoint) : IProxyProtocolFeature
{
    public ProxyProtocolHeader Header { get; } = header;

    public EndPoint? SocketRemoteEndPoint { get; } = socketRemoteEndPoint;

    public EndPoint? SocketLocalEndPoint { get; } = socketLocalEndPoint;
}
