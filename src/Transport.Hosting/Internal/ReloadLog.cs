using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal;

// Configuration reload: event ids 90–99.
internal static partial class TransportLog
{
    [LoggerMessage(90, LogLevel.Information, "Reloaded Transport configuration ({Trigger}): {Changes}")]
    public static partial void ReloadApplied(ILogger logger, string trigger, string changes);

    [LoggerMessage(91, LogLevel.Debug, "Configuration reloaded ({Trigger}): nothing under Transport changed.")]
    public static partial void ReloadUnchanged(ILogger logger, string trigger);

    [LoggerMessage(92, LogLevel.Error, "Ignored the changed Transport configuration ({Trigger}); the running configuration stays: {Reason}")]
    public static partial void ReloadInvalid(ILogger logger, string trigger, string reason);

    [LoggerMessage(93, LogLevel.Warning, "Endpoint '{Endpoint}' keeps its running configuration: {Reason}")]
    public static partial void EndpointRolledBack(ILogger logger, string endpoint, string reason);

    [LoggerMessage(94, LogLevel.Error, "Reloading the Transport configuration ({Trigger}) failed; the endpoints changed before the failure keep their new configuration, the others their running one.")]
    public static partial void ReloadFailed(ILogger logger, string trigger, Exception exception);

    [LoggerMessage(95, LogLevel.Error, "Releasing what endpoint '{Endpoint}' held for its previous configuration (a certificate watcher) failed; the endpoint carries on.")]
    public static partial void ReleaseFailed(ILogger logger, string endpoint, Exception exception);

    [LoggerMessage(96, LogLevel.Error, "Re-reading the configuration on SIGHUP failed ({Reason}); the running configuration stays.")]
    public static partial void SignalReadFailed(ILogger logger, string reason);

    [LoggerMessage(97, LogLevel.Error, "Draining the listeners endpoint '{Endpoint}' no longer uses failed; the endpoint carries on.")]
    public static partial void ReloadDrainFailed(ILogger logger, string endpoint, Exception exception);
}
