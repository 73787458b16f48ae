using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Transport.Sockets.Internal.Epoll;

/// <summary>
/// A socket descriptor accepted on an I/O thread, closed with a plain close(2). Not a <see cref="System.Net.Sockets.SafeSocketHandle"/>:
/// disposing one of those without its <see cref="System.Net.Sockets.Socket"/> closes abortively (SO_LINGER 0: an RST,
/// the unsent bytes dropped), where a connection that ends gracefully must close gracefully.
/// </summary>
internal sealed partial class SocketDescriptor : SafeHandleMinusOneIsInvalid
{
    public SocketDescriptor(int fd)
        : base(ownsHandle: true)
    {
        SetHandle(fd);
    }

    protected override bool ReleaseHandle() => close((int)handle) == 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
