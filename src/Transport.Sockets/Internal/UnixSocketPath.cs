using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

/// <summary>
/// Prepares a Unix socket path for binding: creates a missing directory, replaces a stale socket file
/// nobody listens on, and refuses a live socket or any file that is not a socket.
/// </summary>
internal static partial class UnixSocketPath
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28;
    private const int FileTypeMask = 0xF000;
    private const int SocketFileType = 0xC000;

    public static void Prepare(string path, ILogger logger)
    {
        string? directory = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot create the directory '{directory}' for Unix socket '{path}': {ex.Message}", ex);
            }
        }

        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }

        if (IsSocket(path) != true)
        {
            throw new AddressInUseException(
                $"Unix socket path '{path}' is taken by a file that is not a socket; it was left untouched. Remove it or choose another path.");
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(path);
            SocketsLog.StaleSocketFileRemoved(logger, path);
            return;
        }

        throw new AddressInUseException($"Unix socket '{path}' is in use: another server is listening on it.");
    }

    /// <summary>Whether <paramref name="path"/> is a socket file; null when that cannot be told on this OS.</summary>
    public static bool? IsSocket(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return null;
        }

        int mode = BitConverter.ToUInt16(buffer.Slice(StatxModeOffset, 2));
        return (mode & FileTypeMask) == SocketFileType;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte statxBuffer);
}
