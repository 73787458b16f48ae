using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

/// <summary>
/// The listener's sessions by peer address: found for each datagram without allocating, bounded by
/// <see cref="UdpTransportOptions.MaxSessions"/>, counted in <c>transport.udp.active_sessions</c>.
/// </summary>
internal sealed class UdpSessionTable(int maxSessions, UdpEndpointMetrics metrics, ILogger logger, string name)
{
    private readonly ConcurrentDictionary<SocketAddress, UdpConnection> _sessions = new();
    private int _limitWarned;

    public bool IsEmpty => _sessions.IsEmpty;

    /// <summary>
    /// A snapshot of the sessions: a walk over it reaches every one, even when sessions end (and leave the table)
    /// while it walks.
    /// </summary>
    public ICollection<UdpConnection> Snapshot => _sessions.Values;

    public bool TryGet(SocketAddress address, [NotNullWhen(true)] out UdpConnection? session) => _sessions.TryGetValue(address, out session);

    /// <summary>Whether one more session fits; when not, the datagram is counted as refused and the limit logged once.</summary>
    public bool HasRoom()
    {
        if (_sessions.Count < maxSessions)
        {
            return true;
        }

        metrics.Refused.Add(1);
        if (Interlocked.Exchange(ref _limitWarned, 1) == 0)
        {
            UdpLog.SessionLimitReached(logger, name, maxSessions);
        }

        return false;
    }

    /// <summary>Adds a session under its own copy of its key (<see cref="UdpConnection.Key"/>: the peer's address, or its client's behind a proxy).</summary>
    public void Add(UdpConnection session)
    {
        _sessions[session.Key!] = session;
        metrics.Sessions.Add(1);
    }

    public void Remove(UdpConnection session)
    {
        if (session.Key is not null && _sessions.TryRemove(new KeyValuePair<SocketAddress, UdpConnection>(session.Key, session)))
        {
            metrics.Sessions.Add(-1);
            if (_sessions.Count < maxSessions)
            {
                // Below the limit again: the next time it is reached is worth a line of its own.
                Volatile.Write(ref _limitWarned, 0);
            }
        }
    }
}
