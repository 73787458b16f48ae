using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

internal static partial class SocketsLog
{
    [LoggerMessage(1, LogLevel.Debug, "Connection {ConnectionId}: the peer closed its side (FIN).")]
    public static partial void ConnectionReadFin(ILogger logger, string connectionId);

    [LoggerMessage(2, LogLevel.Debug, "Connection {ConnectionId}: the peer reset the connection ({SocketError}).")]
    public static partial void ConnectionReset(ILogger logger, string connectionId, SocketError socketError);

    [LoggerMessage(3, LogLevel.Debug, "Connection {ConnectionId} aborted: {Reason}")]
    public static partial void ConnectionAborted(ILogger logger, string connectionId, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Connection {ConnectionId}: unexpected I/O error.")]
    public static partial void ConnectionError(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(5, LogLevel.Information, "Removed stale Unix socket file {Path} (nothing was listening on it).")]
    public static partial void StaleSocketFileRemoved(ILogger logger, string path);

    [LoggerMessage(6, LogLevel.Debug, "A connection was reset by its peer before it was accepted on {EndPoint}.")]
    public static partial void AcceptReset(ILogger logger, string endPoint);

    [LoggerMessage(7, LogLevel.Warning, "Could not remove Unix socket file {Path}.")]
    public static partial void SocketFileRemoveFailed(ILogger logger, string path, Exception exception);
}
