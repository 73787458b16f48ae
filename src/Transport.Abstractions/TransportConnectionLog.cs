using Microsoft.Extensions.Logging;

namespace Transport;

internal static partial class TransportConnectionLog
{
    // Logged in the transport's category: ids from 100 leave the transports' own ids free.
    [LoggerMessage(100, LogLevel.Error, "Connection {ConnectionId}: a callback registered on {Token} threw; the other callbacks ran and the connection carries on.")]
    public static partial void CallbackFailed(ILogger logger, string connectionId, string token, Exception exception);
}
