using System.Net;

namespace Transport;

/// <summary>
/// Set on a connection that arrived with a PROXY protocol header (an endpoint's <c>ProxyProtocol</c> section). The
/// connection's <c>RemoteEndPoint</c> and <c>LocalEndPoint</c> are then the client's real ones, from the header, for
/// every protocol, log line and metric; the addresses of the connection the proxy made are kept here.
/// </summary>
public interface IProxyProtocolFeature
{
    /// <summary>The header: version, command, addresses and TLVs.</summary>
    ProxyProtocolHeader Header { get; }

    /// <summary>The proxy's address: the remote end of the connection as the transport reported it.</summary>
    EndPoint? SocketRemoteEndPoint { get; }

    /// <summary>The local end of the connection as the transport reported it.</summary>
    EndPoint? SocketLocalEndPoint { get; }
}
