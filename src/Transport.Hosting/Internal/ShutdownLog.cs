using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal;

// The shutdown phases and the HAProxy agent: event ids 70–79.
internal static partial class TransportLog
{
    [LoggerMessage(70, LogLevel.Information, "Stopping: reporting drain to load balancers and still accepting for {DrainDelay} (Transport:DrainDelay), then draining; the whole stop may take up to {Longest}.")]
    public static partial void DrainDelayStarted(ILogger logger, TimeSpan drainDelay, TimeSpan longest);

    [LoggerMessage(71, LogLevel.Information, "Stopped accepting on {Endpoints} listener(s); {Open} connection(s) still open.")]
    public static partial void StoppedAccepting(ILogger logger, int endpoints, long open);

    [LoggerMessage(72, LogLevel.Information, "Stopped in {TotalSeconds:0.###} s (draining connections took {DrainSeconds:0.###} s).")]
    public static partial void Stopped(ILogger logger, double totalSeconds, double drainSeconds);

    [LoggerMessage(73, LogLevel.Warning, "The host's shutdown timeout passed during the {Phase} phase; the stop needs up to {Needed}: raise HostOptions.ShutdownTimeout (e.g. --shutdownTimeoutSeconds) above Transport:DrainDelay plus the longest ShutdownTimeout.")]
    public static partial void HostDeadlineDuringShutdown(ILogger logger, string phase, TimeSpan needed);

    [LoggerMessage(74, LogLevel.Debug, "HAProxy agent check on connection {ConnectionId}: answered '{Reply}'.")]
    public static partial void AgentAnswered(ILogger logger, string connectionId, string reply);

    [LoggerMessage(75, LogLevel.Information, "HAProxy agent: now answering '{State}' (was '{Previous}').")]
    public static partial void AgentStateChanged(ILogger logger, string state, string previous);
}
