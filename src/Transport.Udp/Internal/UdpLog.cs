using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

internal static partial class UdpLog
{
    [LoggerMessage(1, LogLevel.Warning, "{EndPoint}: session limit of {Limit} reached; datagrams from new peers are dropped until a session ends.")]
    public static partial void SessionLimitReached(ILogger logger, string endPoint, int limit);

    [LoggerMessage(2, LogLevel.Warning, "{EndPoint}: a datagram larger than {Limit} bytes from {Peer} was dropped (logged once per peer).")]
    public static partial void OversizeDatagram(ILogger logger, string endPoint, int limit, string peer);

    [LoggerMessage(3, LogLevel.Debug, "{EndPoint}: receive error {Error} ignored (an ICMP error from some peer); the endpoint keeps serving.")]
    public static partial void ReceiveErrorIgnored(ILogger logger, string endPoint, string error);

    [LoggerMessage(4, LogLevel.Debug, "{EndPoint}: session {ConnectionId} with {Peer} ended after {IdleSeconds} s idle.")]
    public static partial void SessionIdle(ILogger logger, string endPoint, string connectionId, string? peer, double idleSeconds);

    [LoggerMessage(5, LogLevel.Debug, "{EndPoint}: session {ConnectionId} with {Peer} is slower than its peer; a datagram was dropped (queue full).")]
    public static partial void QueueFull(ILogger logger, string endPoint, string connectionId, string? peer);

    [LoggerMessage(6, LogLevel.Error, "{EndPoint}: receiving failed ({Error}: {Reason}); retrying with a growing delay, up to {MaxDelaySeconds} s, until it succeeds. Sessions stay open.")]
    public static partial void ReceiveFailing(ILogger logger, string endPoint, string error, string reason, double maxDelaySeconds, Exception? exception);

    [LoggerMessage(20, LogLevel.Error, "{EndPoint}: ending idle session {ConnectionId} failed; the sweep carries on.")]
    public static partial void SweepFailed(ILogger logger, string endPoint, string connectionId, Exception exception);

    [LoggerMessage(21, LogLevel.Error, "{EndPoint}: the idle-session sweep failed; it runs again at the next tick.")]
    public static partial void SweepFailed(ILogger logger, string endPoint, Exception exception);

    [LoggerMessage(22, LogLevel.Error, "Client connection {ConnectionId}: handing a received datagram to the connection failed; the connection ends with that error.")]
    public static partial void ClientDeliverFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(7, LogLevel.Debug, "{EndPoint}: batched receive (recvmmsg) is not available ({Reason}); using one receive per datagram.")]
    public static partial void BatchReceiveUnavailable(ILogger logger, string endPoint, string reason);

    [LoggerMessage(8, LogLevel.Debug, "{EndPoint}: receiving failed again ({Error}), {Failures} attempts so far; next attempt in {DelayMilliseconds} ms.")]
    public static partial void ReceiveFailingAgain(ILogger logger, string endPoint, string error, long failures, double delayMilliseconds);

    [LoggerMessage(9, LogLevel.Warning, "{EndPoint}: receiving again after {Failures} failed attempts over {DurationSeconds:0.###} s.")]
    public static partial void ReceiveRecovered(ILogger logger, string endPoint, long failures, double durationSeconds);

    [LoggerMessage(10, LogLevel.Debug, "{EndPoint}: a datagram from {Peer} was dropped by the PROXY protocol check: {Reason}.")]
    public static partial void ProxyHeaderRejected(ILogger logger, string endPoint, string? peer, string reason);
}
