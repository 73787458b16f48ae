using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Transport.Sockets.Internal;

/// <summary>Converts OS socket errors into the connection exceptions protocols see.</summary>
internal static class SocketErrors
{
    /// <summary>The peer reset or went away: an ordinary end of a connection.</summary>
    public static bool IsConnectionReset(SocketError error) =>
        error is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted
            or SocketError.NetworkReset or SocketError.TimedOut or SocketError.HostUnreachable
            or SocketError.NetworkUnreachable or SocketError.NetworkDown;

    /// <summary>Our side closed the socket under a pending operation.</summary>
    public static bool IsAbort(SocketError error) =>
        error is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument or SocketError.NotSocket;

    public static Exception ToConnectException(EndPoint endpoint, SocketException ex)
    {
        string target = TransportUrl.Format(endpoint);
        return ex.SocketErrorCode switch
        {
            _ when endpoint is UnixDomainSocketEndPoint unix && !File.Exists(unix.ToString()) =>
                new ConnectionRefusedException($"Cannot connect to {target}: there is no socket file at that path.", ex),
            SocketError.ConnectionRefused => new ConnectionRefusedException($"Connection to {target} was refused: nothing listens there.", ex),
            SocketError.AddressNotAvailable or SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain =>
                new ConnectionRefusedException($"Cannot connect to {target}: {ex.Message}", ex),
            _ => new ConnectionRefusedException($"Cannot connect to {target}: {ex.Message}", ex),
        };
    }
}
