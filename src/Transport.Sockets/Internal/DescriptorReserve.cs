using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Transport.Sockets.Internal;

/// <summary>
/// Linux: keeps the process from spending its last file descriptors on accepted connections. The .NET runtime needs
/// a few free descriptors to start a thread (a pipe, and a file it reads), and a runtime that cannot start one ends the
/// process ("Out of memory."); the thread pool starts threads exactly when a burst of connections arrives. So the
/// listeners hold <see cref="ReserveSize"/> descriptors back. When an accept fails because the process is at its limit,
/// or an accept leaves fewer than <see cref="Headroom"/> free, the reserve is released for the runtime, and no listener
/// accepts again until it has taken the whole reserve back: connections wait in the kernel's queue meanwhile.
/// </summary>
/// <remarks>
/// Costs nothing per accept until the process first comes near its limit (an accepted descriptor's number is within
/// reach of the limit, or an accept failed for lack of descriptors); from then on each accept counts the free
/// descriptors by duplicating <see cref="Headroom"/> of them.
/// </remarks>
internal static partial class DescriptorReserve
{
    /// <summary>Descriptors held back while the process is below its limit.</summary>
    public const int ReserveSize = 16;

    /// <summary>Free descriptors an accept must leave: starting a thread takes three at once.</summary>
    public const int Headroom = 4;

    private const int FDupFdCloExec = 1030;
    private const int RLimitNoFile = 7;

    private static readonly Lock s_lock = new();
    private static readonly int[] s_held = new int[ReserveSize];
    private static SafeFileHandle? s_source;
    private static long s_limit = long.MaxValue;
    private static int s_count;
    private static bool s_enabled;
    private static bool s_full = true;
    private static bool s_guarded;

    /// <summary>Takes the reserve when the first listener binds (Linux only; elsewhere does nothing).</summary>
    public static void Enable()
    {
        if (!OperatingSystem.IsLinux() || Volatile.Read(ref s_enabled))
        {
            return;
        }

        lock (s_lock)
        {
            if (s_enabled)
            {
                return;
            }

            try
            {
                s_source = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                s_limit = getrlimit(RLimitNoFile, out RLimit limit) == 0 && (ulong)limit.Current < long.MaxValue ? (long)limit.Current : long.MaxValue;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
            {
                // No /dev/null or libc: run without a reserve, as on other systems.
                return;
            }

            Volatile.Write(ref s_enabled, true);
            if (!Fill())
            {
                // Bound already at the limit: the first accept waits until the reserve can be taken.
                CloseHeld();
                Volatile.Write(ref s_full, false);
            }
        }
    }

    /// <summary>
    /// Before an accept: whether the reserve is held, taking it back first if it was released (which needs
    /// <see cref="Headroom"/> more descriptors free besides). <see langword="false"/> means the process is still at its
    /// limit and should not accept yet.
    /// </summary>
    public static bool TryRestore()
    {
        if (Volatile.Read(ref s_full))
        {
            return true;
        }

        lock (s_lock)
        {
            if (s_full)
            {
                return true;
            }

            if (Fill() && CountFree(Headroom))
            {
                Volatile.Write(ref s_full, true);
                return true;
            }

            CloseHeld();
            return false;
        }
    }

    /// <summary>The process is at its limit: frees the reserve for the runtime, and watches every accept from now on.</summary>
    public static void Release()
    {
        if (!Volatile.Read(ref s_enabled))
        {
            return;
        }

        lock (s_lock)
        {
            Volatile.Write(ref s_guarded, true);
            Volatile.Write(ref s_full, false);
            CloseHeld();
        }
    }

    /// <summary>After an accept that returned <paramref name="descriptor"/>: whether <see cref="Headroom"/> descriptors are still free.</summary>
    public static bool HasHeadroom(nint descriptor)
    {
        if (!Volatile.Read(ref s_enabled) || (!Volatile.Read(ref s_guarded) && descriptor < s_limit - (2 * (ReserveSize + Headroom))))
        {
            return true;
        }

        lock (s_lock)
        {
            // Linux hands out the lowest free descriptor, so its number alone cannot tell how many are left: count them.
            Volatile.Write(ref s_guarded, true);
            return CountFree(Headroom);
        }
    }

    /// <summary>Under the lock: whether <paramref name="wanted"/> descriptors can be opened now (they are closed again).</summary>
    private static bool CountFree(int wanted)
    {
        Span<int> probe = stackalloc int[wanted];
        int source = (int)s_source!.DangerousGetHandle();
        int taken = 0;
        while (taken < wanted && (probe[taken] = fcntl(source, FDupFdCloExec, 0)) >= 0)
        {
            taken++;
        }

        for (int i = 0; i < taken; i++)
        {
            _ = close(probe[i]);
        }

        return taken == wanted;
    }

    /// <summary>Under the lock: takes the whole reserve; false if the process ran out first (what it got stays held until <see cref="CloseHeld"/>).</summary>
    private static bool Fill()
    {
        int source = (int)s_source!.DangerousGetHandle();
        while (s_count < ReserveSize)
        {
            int fd = fcntl(source, FDupFdCloExec, 0);
            if (fd < 0)
            {
                return false;
            }

            s_held[s_count++] = fd;
        }

        return true;
    }

    private static void CloseHeld()
    {
        while (s_count > 0)
        {
            _ = close(s_held[--s_count]);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        // rlim_t: unsigned long.
        public nuint Current;
        public nuint Maximum;
    }
}
