using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>
/// Ends the input of sessions whose peer has been quiet for <see cref="UdpTransportOptions.SessionIdleTimeout"/>
/// (UDP has no FIN), checking four times per timeout; and, each time, tells the process's memory collector whether
/// the endpoint was quiet.
/// </summary>
internal sealed class UdpIdleSweep : IDisposable
{
    private readonly UdpSessionTable _sessions;
    private readonly long _idleMilliseconds;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly Timer _timer;
    private readonly IdleMemoryCollector.Source? _memory;
    private readonly Func<bool>? _takeQuiet;

    /// <param name="sessions">The endpoint's sessions.</param>
    /// <param name="idleTimeout">How long a session may be quiet.</param>
    /// <param name="logger">The transport's logger.</param>
    /// <param name="name">The endpoint, for log lines.</param>
    /// <param name="memory">The memory collector's handle for this endpoint; null when it does not take part.</param>
    /// <param name="takeQuiet">Whether the endpoint was quiet since the last call (and starts a new period).</param>
    public UdpIdleSweep(UdpSessionTable sessions, TimeSpan idleTimeout, ILogger logger, string name,
        IdleMemoryCollector.Source? memory = null, Func<bool>? takeQuiet = null)
    {
        _sessions = sessions;
        _memory = memory;
        _takeQuiet = takeQuiet;
        _idleMilliseconds = (long)idleTimeout.TotalMilliseconds;
        _logger = logger;
        _name = name;
        TimeSpan period = idleTimeout / 4;
        _timer = new Timer(static s => ((UdpIdleSweep)s!).OnTimer(), this, period, period);
    }

    public void Dispose()
    {
        _timer.Dispose();
        _memory?.Dispose();
    }

    private void OnTimer()
    {
        // A timer callback that throws ends the process: ending a session runs its protocol's code (inline
        // scheduling), so whatever escapes is logged and the next tick sweeps again.
        try
        {
            Sweep();

            // After the sweep: sessions it ended count as this period's activity, so the memory they leave behind
            // is judged at the next quiet period, as heap grown since the last collection.
            if (_memory is not null && _takeQuiet is not null)
            {
                _memory.OnTrimmed(_takeQuiet(), 0);
            }
        }
        catch (Exception ex)
        {
            UdpLog.SweepFailed(_logger, _name, ex);
        }
    }

    private void Sweep()
    {
        long now = Environment.TickCount64;

        // A snapshot: ending a session can run its protocol inline, which disposes it and removes it from the table
        // inside this loop, and the walk must still reach every other idle session.
        foreach (UdpConnection session in _sessions.Snapshot)
        {
            long idle = now - session.LastActivity;
            if (idle >= _idleMilliseconds)
            {
                try
                {
                    UdpLog.SessionIdle(_logger, _name, session.ConnectionId, session.RemoteEndPoint?.ToString(), idle / 1000.0);
                    session.EndInput(null);
                }
                catch (Exception ex)
                {
                    // One session must not stop the sweep.
                    UdpLog.SweepFailed(_logger, _name, session.ConnectionId, ex);
                }
            }
        }
    }
}
