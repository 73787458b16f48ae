using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.Systemd;

/// <summary>Inherited sockets and sd_notify: event ids 80-89.</summary>
internal static partial class SystemdLog
{
    [LoggerMessage(80, LogLevel.Information, "Endpoint '{Endpoint}' takes over {Url} (descriptor {Descriptor}, {Kind}) at {Address}.")]
    public static partial void TakingOver(ILogger logger, string endpoint, string url, int descriptor, string kind, string address);

    [LoggerMessage(81, LogLevel.Information, "Endpoint '{Endpoint}': the connection handed over by systemd (Accept=yes) has ended; stopping the host.")]
    public static partial void AcceptedConnectionEnded(ILogger logger, string endpoint);

    [LoggerMessage(82, LogLevel.Information, "Notifying systemd on {NotifySocket}: READY=1 once every endpoint is bound, STATUS= every {StatusSeconds} s, STOPPING=1 and EXTEND_TIMEOUT_USEC= while draining{Watchdog}.")]
    public static partial void Notifying(ILogger logger, string notifySocket, double statusSeconds, string watchdog);

    [LoggerMessage(83, LogLevel.Warning, "Cannot notify systemd on {NotifySocket}: {Reason}")]
    public static partial void NotifyFailed(ILogger logger, string notifySocket, string reason);

    [LoggerMessage(84, LogLevel.Error, "Withholding the systemd watchdog ping: the accept loop of endpoint '{Endpoint}' has ended while serving; systemd will restart the service (WatchdogSec=).")]
    public static partial void WatchdogWithheld(ILogger logger, string endpoint);

    [LoggerMessage(86, LogLevel.Debug, "The host uses Microsoft.Extensions.Hosting.Systemd (UseSystemd): it sends READY=1 and STOPPING=1; Transport sends STATUS=, EXTEND_TIMEOUT_USEC= and WATCHDOG=1.")]
    public static partial void SystemdLifetimeDetected(ILogger logger);

    [LoggerMessage(87, LogLevel.Warning, "WATCHDOG_USEC '{Value}' is not a positive number of microseconds; no watchdog pings are sent.")]
    public static partial void BadWatchdogUsec(ILogger logger, string value);
}
