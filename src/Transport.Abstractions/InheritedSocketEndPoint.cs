using System.Net;
using System.Net.Sockets;

namespace Transport;

/// <summary>
/// A socket this process did not create but inherited, already bound, from the process that started it: systemd's
/// socket activation (<c>systemd:NAME</c>) or an open descriptor (<c>fd:N</c>). A transport takes it over instead of
/// binding: a listening stream socket (TCP or Unix) goes to the socket transport, a datagram socket to the UDP transport,
/// and a connected stream socket (systemd's <c>Accept=yes</c>) becomes that transport's one connection.
/// </summary>
/// <remarks>The transport owns <see cref="Socket"/> once bound: it closes it at unbind and never unlinks a Unix socket file it did not create.</remarks>
public sealed class InheritedSocketEndPoint : EndPoint
{
    /// <summary>Wraps an inherited socket.</summary>
    /// <param name="socket">The socket, e.g. <c>new Socket(new SafeSocketHandle(fd, true))</c>.</param>
    /// <param name="url">Where it came from, for messages: <c>systemd:NAME</c> or <c>fd:N</c>.</param>
    public InheritedSocketEndPoint(Socket socket, string url)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentException.ThrowIfNullOrEmpty(url);
        Socket = socket;
        Url = url;
    }

    /// <summary>The inherited socket.</summary>
    public Socket Socket { get; }

    /// <summary>Where the socket came from: <c>systemd:NAME</c> or <c>fd:N</c>.</summary>
    public string Url { get; }

    /// <summary>Whether the socket is a stream socket that listens (<c>SO_ACCEPTCONN</c>) rather than one connection.</summary>
    public bool IsListening => Socket.SocketType == SocketType.Stream && IsAcceptingConnections(Socket);

    /// <inheritdoc />
    public override AddressFamily AddressFamily => Socket.AddressFamily;

    /// <inheritdoc />
    public override string ToString() => Url;

    private static bool IsAcceptingConnections(Socket socket)
    {
        const int SolSocket = 1;
        const int SoAcceptConn = 30;
        if (!OperatingSystem.IsLinux())
        {
            return socket.RemoteEndPointOrNull() is null;
        }

        Span<byte> value = stackalloc byte[sizeof(int)];
        try
        {
            return socket.GetRawSocketOption(SolSocket, SoAcceptConn, value) == sizeof(int) && BitConverter.ToInt32(value) != 0;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>Socket helpers shared by the transports.</summary>
internal static class InheritedSocketExtensions
{
    /// <summary>The peer of a connected socket; null for one that is not connected.</summary>
    public static EndPoint? RemoteEndPointOrNull(this Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
