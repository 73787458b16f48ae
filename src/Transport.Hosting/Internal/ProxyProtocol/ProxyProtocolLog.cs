using System.Net;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.ProxyProtocol;

/// <summary>The PROXY protocol middleware's lines, in the <c>Transport.Hosting</c> category (event ids 60–69).</summary>
internal static partial class ProxyProtocolLog
{
    [LoggerMessage(60, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' from {RemoteEndPoint} closed before the protocol: {Reason} (PROXY protocol, {ErrorType}).")]
    public static partial void Rejected(ILogger logger, string connectionId, string endpoint, EndPoint? remoteEndPoint, string reason, string errorType);

    [LoggerMessage(61, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}': PROXY v{Version} header from proxy {ProxyEndPoint}: client {ClientEndPoint}, local {LocalEndPoint}{Local}.")]
    public static partial void HeaderRead(ILogger logger, string connectionId, string endpoint, int version, EndPoint? proxyEndPoint, EndPoint? clientEndPoint,
        EndPoint? localEndPoint, string local);

    [LoggerMessage(62, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' from {RemoteEndPoint} sent no PROXY header; served with its own addresses (Mode is Optional).")]
    public static partial void NoHeader(ILogger logger, string connectionId, string endpoint, EndPoint? remoteEndPoint);
}
