using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Transport.Internal;

namespace Transport.Sockets.Internal.Epoll;

/// <summary>The Linux calls the transport's own I/O threads make: epoll, and non-blocking recv/send on a socket.</summary>
internal static unsafe partial class EpollNative
{
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    public const int MSG_PEEK = 0x02;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int SOCK_CLOEXEC = 0x80000;
    private const nuint FIONREAD = 0x541B;
    private const int SOL_SOCKET = 1;
    private const int SO_LINGER = 13;
    private const int IPPROTO_TCP = 6;
    private const int TCP_NODELAY = 1;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;

    /// <summary>
    /// Whether this process can use them: Linux on x64 or Arm64, the two layouts of <c>struct epoll_event</c> we know
    /// (packed, 12 bytes, on x64; natural, 16 bytes, elsewhere).
    /// </summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>The size of one <c>struct epoll_event</c>.</summary>
    public static int EventSize { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    /// <summary>Where <c>epoll_data_t</c> starts in one event.</summary>
    public static int DataOffset { get; } = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    public static int CreateEpoll()
    {
        int fd = epoll_create1(EPOLL_CLOEXEC);
        return fd >= 0 ? fd : throw new SocketException((int)LinuxErrno.ToSocketError(Marshal.GetLastPInvokeError()));
    }

    /// <summary>
    /// Adds the socket, edge-triggered for both directions, with <paramref name="data"/>. The kernel reports the socket's
    /// readiness at the time of the add as a first event. The descriptor's blocking mode is left alone: every call here
    /// passes MSG_DONTWAIT. Closing the descriptor takes it out of the set.
    /// </summary>
    public static SocketError Register(int epoll, SafeHandle socket, ulong data)
    {
        byte* ev = stackalloc byte[16];
        Unsafe.WriteUnaligned(ev, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        Unsafe.WriteUnaligned(ev + DataOffset, data);
        return epoll_ctl(epoll, EPOLL_CTL_ADD, socket, ev) < 0 ? LinuxErrno.ToSocketError(Marshal.GetLastPInvokeError()) : SocketError.Success;
    }

    /// <summary>
    /// A non-blocking eventfd in <paramref name="epoll"/>'s set, level-triggered for reading, with <paramref name="data"/>:
    /// how another thread wakes the one that waits on the set.
    /// </summary>
    public static int CreateWakeEvent(int epoll, ulong data)
    {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
        {
            throw new SocketException((int)LinuxErrno.ToSocketError(Marshal.GetLastPInvokeError()));
        }

        byte* ev = stackalloc byte[16];
        Unsafe.WriteUnaligned(ev, EPOLLIN);
        Unsafe.WriteUnaligned(ev + DataOffset, data);
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, ev) < 0)
        {
            throw new SocketException((int)LinuxErrno.ToSocketError(Marshal.GetLastPInvokeError()));
        }

        return fd;
    }

    /// <summary>Makes the wake event readable (wakes the set's thread).</summary>
    public static void Signal(int wakeEvent)
    {
        ulong one = 1;
        _ = write(wakeEvent, &one, sizeof(ulong));
    }

    /// <summary>Makes the wake event unreadable again.</summary>
    public static void ResetWake(int wakeEvent)
    {
        ulong count;
        _ = read(wakeEvent, &count, sizeof(ulong));
    }

    /// <summary>Waits for events; returns their count, 0 on EINTR, or -errno.</summary>
    public static int Wait(int epoll, byte* events, int maxEvents)
    {
        int n = epoll_wait(epoll, events, maxEvents, -1);
        if (n >= 0)
        {
            return n;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == LinuxErrno.EINTR ? 0 : -errno;
    }

    /// <summary>recv(2) without blocking: the bytes received, 0 at the peer's FIN, or -1 with <paramref name="error"/>.</summary>
    public static int Receive(SafeHandle socket, byte* buffer, int length, int flags, out SocketError error)
    {
        nint n;
        do
        {
            n = recv(socket, buffer, length, flags | MSG_DONTWAIT);
        }
        while (Interrupted(n, out error));

        return n >= 0 ? (int)n : -1;
    }

    /// <summary>send(2) without blocking or SIGPIPE: the bytes sent, or -1 with <paramref name="error"/>.</summary>
    public static int Send(SafeHandle socket, byte* buffer, int length, out SocketError error)
    {
        nint n;
        do
        {
            n = send(socket, buffer, length, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        while (Interrupted(n, out error));

        return n >= 0 ? (int)n : -1;
    }

    /// <summary>
    /// accept4(2) on a non-blocking listening socket: the new connection's descriptor (close-on-exec, blocking mode as
    /// accept leaves it: every call on it passes MSG_DONTWAIT), or -1 with <paramref name="error"/>
    /// (<see cref="SocketError.WouldBlock"/> when none is queued).
    /// </summary>
    public static int Accept(SafeHandle listener, out SocketError error) => Accept(listener, null, null, out error);

    /// <summary>
    /// <see cref="Accept(SafeHandle, out SocketError)"/> that also stores the peer's address in <paramref name="address"/>
    /// (<paramref name="addressLength"/> bytes in, the address's length out), as the same call gives it for free.
    /// </summary>
    public static int Accept(SafeHandle listener, byte* address, uint* addressLength, out SocketError error)
    {
        int fd;
        do
        {
            fd = accept4(listener, address, addressLength, SOCK_CLOEXEC);
        }
        while (Interrupted(fd, out error));

        return fd;
    }

    /// <summary>getsockname(2): the socket's own address into <paramref name="address"/>; false when the call failed.</summary>
    public static bool GetSocketName(SafeHandle socket, byte* address, uint* addressLength) => getsockname(socket, address, addressLength) == 0;

    /// <summary>The bytes the socket holds for reading (ioctl FIONREAD), 0 when the call failed.</summary>
    public static int Available(SafeHandle socket)
    {
        int available = 0;
        return ioctl(socket, FIONREAD, &available) == 0 ? available : 0;
    }

    /// <summary>TCP_NODELAY on; false when the call failed.</summary>
    public static bool SetNoDelay(SafeHandle socket)
    {
        int on = 1;
        return setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(int)) == 0;
    }

    /// <summary>SO_LINGER on with a zero timeout: closing then resets the connection and drops what is unsent.</summary>
    public static bool SetAbortiveClose(SafeHandle socket)
    {
        // struct linger { int l_onoff; int l_linger; }
        int* linger = stackalloc int[2] { 1, 0 };
        return setsockopt(socket, SOL_SOCKET, SO_LINGER, linger, 2 * sizeof(int)) == 0;
    }

    /// <summary>shutdown(2) of one or both directions; the error, or <see cref="SocketError.Success"/>.</summary>
    public static SocketError Shutdown(SafeHandle socket, SocketShutdown how)
    {
        int value = how switch { SocketShutdown.Receive => 0, SocketShutdown.Send => 1, _ => 2 };
        return shutdown(socket, value) == 0 ? SocketError.Success : LinuxErrno.ToSocketError(Marshal.GetLastPInvokeError());
    }

    /// <summary>sendmsg(2) of a gather list without blocking or SIGPIPE: the bytes sent, or -1 with <paramref name="error"/>.</summary>
    public static int SendGather(SafeHandle socket, IoVec* vectors, int count, out SocketError error)
    {
        MsgHdr header = default;
        header.Iov = vectors;
        header.IovLength = (nuint)count;
        nint n;
        do
        {
            n = sendmsg(socket, &header, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        while (Interrupted(n, out error));

        return n >= 0 ? (int)n : -1;
    }

    /// <summary>Whether a call that returned <paramref name="result"/> was interrupted by a signal (try again); else its error.</summary>
    private static bool Interrupted(nint result, out SocketError error)
    {
        if (result >= 0)
        {
            error = SocketError.Success;
            return false;
        }

        int errno = Marshal.GetLastPInvokeError();
        error = LinuxErrno.ToSocketError(errno);
        return errno == LinuxErrno.EINTR;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, SafeHandle fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buf, nint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(SafeHandle fd, void* addr, uint* addrlen, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(SafeHandle fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockname(SafeHandle fd, void* addr, uint* addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(SafeHandle fd, nuint request, int* value);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(SafeHandle fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int shutdown(SafeHandle fd, int how);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(SafeHandle fd, byte* buf, nint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(SafeHandle fd, MsgHdr* msg, int flags);
}
