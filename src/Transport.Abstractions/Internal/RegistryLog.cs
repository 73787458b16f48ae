using Microsoft.Extensions.Logging;

namespace Transport.Internal;

internal static partial class RegistryLog
{
    [LoggerMessage(300, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' disconnected as a slow consumer: its outbox reached its limit of {Limit} bytes.")]
    public static partial void SlowConsumerDisconnected(ILogger logger, string connectionId, string endpoint, int limit);

    [LoggerMessage(301, LogLevel.Debug, "Connection {ConnectionId}: queued messages not written, the connection ended: {Reason}")]
    public static partial void OutputGone(ILogger logger, string connectionId, string reason);

    [LoggerMessage(302, LogLevel.Error, "Connection {ConnectionId}: writing queued messages failed; its outbox is closed.")]
    public static partial void DrainFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(303, LogLevel.Error, "Connection {ConnectionId}: aborting a slow consumer failed.")]
    public static partial void AbortFailed(ILogger logger, string connectionId, Exception exception);
}
