using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

/// <summary>
/// Ends the input of sessions whose peer has been quiet for <see cref="UdpTransportOptions.SessionIdleTimeout"/>
/// (UDP has no FIN), checking four times per timeout.
/// </summary>
internal sealed class UdpIdleSweep : IDisposable
{
    private readonly UdpSessionTable _sessions;
    private readonly long _idleMilliseconds;
    private readonly ILogger _logger;
    private readonly string _name;
    private readonly Timer _timer;

    public UdpIdleSweep(UdpSessionTable sessions, TimeSpan idleTimeout, ILogger logger, string name)
    {
        _sessions = sessions;
        _idleMilliseconds = (long)idleTimeout.TotalMilliseconds;
        _logger = logger;
        _name = name;
        TimeSpan period = idleTimeout / 4;
        _timer = new Timer(static s => ((UdpIdleSweep)s!).OnTimer(), this, period, period);
    }

    public void Dispose() => _timer.Dispose();

    private void OnTimer()
    {
        // A timer callback that throws ends the process: ending a session runs its protocol's code (inline
        // scheduling), so whatever escapes is logged and the next tick sweeps again.
        try
        {
            Sweep();
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
