using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Transport.Udp.Internal;

/// <summary>The one list of socket errors that mean "that peer is gone", and what a session sees for them.</summary>
internal static class UdpErrors
{
    /// <summary>
    /// An ICMP error (port or host unreachable) for a datagram sent to one peer. The socket is fine; on the listener's
    /// shared socket the kernel reports it on whatever call comes next, so it may not even concern the caller's peer.
    /// </summary>
    public static bool IsPeerUnreachable(SocketError error) =>
        error is SocketError.ConnectionReset or SocketError.ConnectionRefused
            or SocketError.HostUnreachable or SocketError.NetworkUnreachable;

    /// <summary>A receive error after which the next receive goes on: an unreachable peer, or a datagram cut short.</summary>
    public static bool IsIgnoredOnReceive(SocketError error) => IsPeerUnreachable(error) || error == SocketError.MessageSize;

    public static ConnectionResetException PeerUnreachable(EndPoint? peer, SocketException ex) =>
        new($"The peer {peer} is unreachable: {ex.Message}", ex);
}
