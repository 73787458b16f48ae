using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal;

internal static partial class TransportLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {Url} (endpoint '{Endpoint}', protocol '{Protocol}')")]
    public static partial void Listening(ILogger logger, string url, string endpoint, string protocol);

    [LoggerMessage(2, LogLevel.Warning, "No endpoints are configured under {Path}:Endpoints; the server listens on nothing.")]
    public static partial void NoEndpoints(ILogger logger, string path);

    [LoggerMessage(3, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' accepted from {RemoteEndPoint}.")]
    public static partial void ConnectionAccepted(ILogger logger, string connectionId, string endpoint, string? remoteEndPoint);

    [LoggerMessage(4, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' closed.")]
    public static partial void ConnectionClosed(ILogger logger, string connectionId, string endpoint);

    [LoggerMessage(5, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' ended by the peer or transport: {Reason}")]
    public static partial void ConnectionEndedByTransport(ILogger logger, string connectionId, string endpoint, string reason);

    [LoggerMessage(6, LogLevel.Error, "Protocol '{Protocol}' failed on connection {ConnectionId} (endpoint '{Endpoint}'); that connection is closed, others carry on.")]
    public static partial void ProtocolFailed(ILogger logger, string protocol, string connectionId, string endpoint, Exception exception);

    [LoggerMessage(7, LogLevel.Warning, "Endpoint '{Endpoint}' reached its limit of {Limit} concurrent connections; new connections are closed at once until one ends.")]
    public static partial void ConnectionLimitReached(ILogger logger, string endpoint, long limit);

    [LoggerMessage(8, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' refused: {Limit} connections are open.")]
    public static partial void ConnectionRejected(ILogger logger, string connectionId, string endpoint, long limit);

    [LoggerMessage(9, LogLevel.Information, "Stopping: {Count} connection(s) open on '{Endpoint}', waiting up to {Timeout} for them to finish.")]
    public static partial void Draining(ILogger logger, long count, string endpoint, TimeSpan timeout);

    [LoggerMessage(10, LogLevel.Warning, "Shutdown deadline reached: aborting {Count} connection(s) on '{Endpoint}'.")]
    public static partial void AbortingAtDeadline(ILogger logger, long count, string endpoint);

    [LoggerMessage(11, LogLevel.Error, "Accepting connections on '{Endpoint}' failed ({Error}); retrying with a growing delay, up to {MaxDelaySeconds} s, until it succeeds. Open connections are not affected.")]
    public static partial void AcceptFailing(ILogger logger, string endpoint, string error, double maxDelaySeconds, Exception exception);

    [LoggerMessage(13, LogLevel.Warning, "Endpoint '{Endpoint}': cannot listen on the IPv6 loopback for localhost ({Reason}); listening on IPv4 only.")]
    public static partial void LocalhostIPv6Unavailable(ILogger logger, string endpoint, string reason);

    [LoggerMessage(12, LogLevel.Information, "Stopped listening on {Url} (endpoint '{Endpoint}').")]
    public static partial void Unbound(ILogger logger, string url, string endpoint);

    [LoggerMessage(30, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' closed: the client broke protocol '{Protocol}': {Reason}")]
    public static partial void InvalidInput(ILogger logger, string connectionId, string endpoint, string protocol, string reason);

    [LoggerMessage(14, LogLevel.Debug, "Accepting connections on '{Endpoint}' failed again ({Error}), {Failures} attempts so far; next attempt in {DelayMilliseconds} ms.")]
    public static partial void AcceptFailingAgain(ILogger logger, string endpoint, string error, long failures, double delayMilliseconds);

    [LoggerMessage(15, LogLevel.Warning, "Accepting connections on '{Endpoint}' again after {Failures} failed attempts over {DurationSeconds:0.###} s.")]
    public static partial void AcceptRecovered(ILogger logger, string endpoint, long failures, double durationSeconds);

    [LoggerMessage(16, LogLevel.Error, "Closing connection {ConnectionId} on '{Endpoint}' (over its limit) failed; the endpoint keeps accepting.")]
    public static partial void RejectFailed(ILogger logger, string connectionId, string endpoint, Exception exception);

    [LoggerMessage(17, LogLevel.Warning, "{Message}")]
    public static partial void UnknownConfigurationKey(ILogger logger, string message);

    [LoggerMessage(18, LogLevel.Debug, "The host failed to start: {Message}")]
    public static partial void StartFailed(ILogger logger, string message, Exception exception);
}
