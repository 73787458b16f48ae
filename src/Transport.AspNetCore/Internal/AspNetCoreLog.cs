using Microsoft.Extensions.Logging;

namespace Transport.AspNetCore.Internal;

internal static partial class AspNetCoreLog
{
    [LoggerMessage(1, LogLevel.Debug, "HTTP client connection {ConnectionId}: closing it failed.")]
    public static partial void ClientConnectionDisposeFailed(ILogger logger, string connectionId, Exception exception);
}
