using System.Net.Sockets;

namespace Transport.Internal;

/// <summary>The Linux errno values our own socket calls meet, and the <see cref="SocketError"/> .NET reports for each.</summary>
internal static class LinuxErrno
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;

    /// <summary>The <see cref="SocketError"/> for <paramref name="errno"/>; <see cref="SocketError.SocketError"/> for one not listed.</summary>
    public static SocketError ToSocketError(int errno) => errno switch
    {
        EAGAIN => SocketError.WouldBlock,
        1 or 13 => SocketError.AccessDenied, // EPERM (as a firewall rule makes accept fail), EACCES
        22 => SocketError.InvalidArgument, // EINVAL (accept on a socket that no longer listens)
        95 => SocketError.OperationNotSupported,
        9 or 88 => SocketError.NotSocket, // EBADF (closed under us, as by Abort), ENOTSOCK
        12 or 105 => SocketError.NoBufferSpaceAvailable, // ENOMEM, ENOBUFS
        23 or 24 => SocketError.TooManyOpenSockets, // ENFILE, EMFILE
        32 => SocketError.Shutdown, // EPIPE
        90 => SocketError.MessageSize,
        100 => SocketError.NetworkDown,
        101 => SocketError.NetworkUnreachable,
        102 => SocketError.NetworkReset,
        103 => SocketError.ConnectionAborted,
        104 => SocketError.ConnectionReset,
        107 => SocketError.NotConnected,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        112 => SocketError.HostDown,
        113 => SocketError.HostUnreachable,
        _ => SocketError.SocketError,
    };
}
