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

    [LoggerMessage(8, LogLevel.Error, "Accepting connections on {EndPoint} failed ({Error}: {Reason}); retrying with a growing delay, up to {MaxDelaySeconds} s, until it succeeds. Open connections are not affected.")]
    public static partial void AcceptFailing(ILogger logger, string endPoint, string error, string reason, double maxDelaySeconds, Exception? exception);

    [LoggerMessage(9, LogLevel.Debug, "Accepting connections on {EndPoint} failed again ({Error}), {Failures} attempts so far; next attempt in {DelayMilliseconds} ms.")]
    public static partial void AcceptFailingAgain(ILogger logger, string endPoint, string error, long failures, double delayMilliseconds);

    [LoggerMessage(10, LogLevel.Warning, "Accepting connections on {EndPoint} again after {Failures} failed attempts over {DurationSeconds:0.###} s.")]
    public static partial void AcceptRecovered(ILogger logger, string endPoint, long failures, double durationSeconds);

    [LoggerMessage(11, LogLevel.Error, "Aborting connections that outlived the drain timeout failed; the sweep goes on.")]
    public static partial void DrainSweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(12, LogLevel.Error, "Resuming a send held back until its receive batch was handed over failed; the other sends still run.")]
    public static partial void DeferredSendFailed(ILogger logger, Exception exception);

    [LoggerMessage(13, LogLevel.Error, "A socket event handled on the transport's I/O thread failed; the thread goes on serving its other sockets.")]
    public static partial void IoThreadCallbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(14, LogLevel.Error, "Waiting for socket events on the transport's I/O thread failed (errno {Errno}); retrying.")]
    public static partial void IoThreadWaitFailed(ILogger logger, int errno);

    // The memory pool's events are numbered from 120: 100 is the connection base class's callback-failure event, logged in this category too.
    [LoggerMessage(120, LogLevel.Debug, "The buffer pool released {ReleasedKiB} KiB of blocks unused for a trim period; it holds {HeldKiB} KiB.")]
    public static partial void MemoryPoolTrimmed(ILogger logger, long releasedKiB, long heldKiB);

    // 121 (memory returned to the OS) is logged by Transport.Internal.IdleMemoryCollector in this category.

    [LoggerMessage(122, LogLevel.Error, "Trimming the buffer pool failed; it tries again next period.")]
    public static partial void MemoryPoolTrimFailed(ILogger logger, Exception exception);
}
