using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Transport.Hosting.Internal.Systemd;

/// <summary>What an inherited descriptor is, asked of the kernel without taking it over (validation may run more than once).</summary>
internal enum InheritedSocketKind
{
    /// <summary>A TCP or Unix stream socket that listens: the socket transport accepts on it.</summary>
    ListeningStream,

    /// <summary>A connected TCP or Unix stream socket (systemd's Accept=yes): one connection.</summary>
    ConnectedStream,

    /// <summary>An IPv4 or IPv6 datagram socket: the UDP transport serves its peers.</summary>
    Datagram,
}

internal static partial class SocketInspector
{
    private const int SolSocket = 1;
    private const int SoType = 3;
    private const int SoAcceptConn = 30;
    private const int SoDomain = 39;
    private const int SockStream = 1;
    private const int SockDgram = 2;
    private const int AfUnix = 1;
    private const int AfInet = 2;
    private const int AfInet6 = 10;
    private const int EBadF = 9;
    private const int ENotSock = 88;

    /// <summary>Classifies descriptor <paramref name="fd"/>; false with <paramref name="problem"/> saying what it is instead.</summary>
    public static bool TryInspect(int fd, out InheritedSocketKind kind, out AddressFamily family, out string? problem)
    {
        kind = default;
        family = AddressFamily.Unknown;
        if (!OperatingSystem.IsLinux())
        {
            problem = "inherited sockets are supported on Linux only";
            return false;
        }

        if (!TryGetInt(fd, SoType, out int type, out int errno) || !TryGetInt(fd, SoDomain, out int domain, out errno))
        {
            problem = errno switch
            {
                EBadF => $"descriptor {Text(fd)} is not open in this process",
                ENotSock => $"descriptor {Text(fd)} is open but is not a socket",
                _ => $"descriptor {Text(fd)} cannot be inspected (errno {Text(errno)})",
            };
            return false;
        }

        family = domain switch
        {
            AfUnix => AddressFamily.Unix,
            AfInet => AddressFamily.InterNetwork,
            AfInet6 => AddressFamily.InterNetworkV6,
            _ => AddressFamily.Unknown,
        };
        string what = $"descriptor {Text(fd)} is a {TypeName(type)} socket of family {FamilyName(domain)}";
        if (family == AddressFamily.Unknown)
        {
            problem = what + "; Transport serves IPv4, IPv6 and Unix sockets only";
            return false;
        }

        if (type == SockDgram)
        {
            if (family == AddressFamily.Unix)
            {
                problem = what + "; the UDP transport serves IPv4 and IPv6 datagram sockets only (a Unix datagram socket has no peers to tell apart)";
                return false;
            }

            kind = InheritedSocketKind.Datagram;
            problem = null;
            return true;
        }

        if (type != SockStream)
        {
            problem = what + "; expected a listening stream socket (tcp, unix), a connected one (Accept=yes) or a datagram socket (udp)";
            return false;
        }

        if (TryGetInt(fd, SoAcceptConn, out int listening, out _) && listening != 0)
        {
            kind = InheritedSocketKind.ListeningStream;
            problem = null;
            return true;
        }

        if (IsConnected(fd))
        {
            kind = InheritedSocketKind.ConnectedStream;
            problem = null;
            return true;
        }

        problem = what + " that neither listens nor is connected; expected a listening stream socket (ListenStream=) or, with Accept=yes, a connected one";
        return false;
    }

    /// <summary>How the endpoint's log line and messages name a kind.</summary>
    public static string Describe(InheritedSocketKind kind, AddressFamily family) => (kind, family) switch
    {
        (InheritedSocketKind.Datagram, _) => "a UDP socket",
        (InheritedSocketKind.ListeningStream, AddressFamily.Unix) => "a listening Unix socket",
        (InheritedSocketKind.ListeningStream, _) => "a listening TCP socket",
        (InheritedSocketKind.ConnectedStream, AddressFamily.Unix) => "a connected Unix socket (Accept=yes)",
        _ => "a connected TCP socket (Accept=yes)",
    };

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string TypeName(int type) => type switch
    {
        SockStream => "stream",
        SockDgram => "datagram",
        5 => "seqpacket",
        3 => "raw",
        _ => "type " + Text(type),
    };

    private static string FamilyName(int domain) => domain switch
    {
        AfUnix => "AF_UNIX",
        AfInet => "AF_INET",
        AfInet6 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        _ => Text(domain),
    };

    private static unsafe bool TryGetInt(int fd, int option, out int value, out int errno)
    {
        int result = 0;
        uint length = sizeof(int);
        if (GetSockOpt(fd, SolSocket, option, &result, &length) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            value = 0;
            return false;
        }

        errno = 0;
        value = result;
        return true;
    }

    private static unsafe bool IsConnected(int fd)
    {
        byte* address = stackalloc byte[128];
        uint length = 128;
        return GetPeerName(fd, address, &length) == 0;
    }

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static unsafe partial int GetSockOpt(int fd, int level, int option, int* value, uint* length);

    [LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    private static unsafe partial int GetPeerName(int fd, byte* address, uint* length);
}
