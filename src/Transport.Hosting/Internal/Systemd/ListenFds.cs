using System.Globalization;
using System.Runtime.InteropServices;

namespace Transport.Hosting.Internal.Systemd;

/// <summary>
/// The sockets systemd (or <c>systemd-socket-activate</c>) passed this process: <c>LISTEN_FDS</c> descriptors from 3 on,
/// named by <c>LISTEN_FDNAMES</c>, meant for the process <c>LISTEN_PID</c> names. Read once per process, as
/// <c>sd_listen_fds(unset_environment=1)</c> does: the variables are cleared after reading, so that a child process does
/// not take them for its own, and the descriptors are marked close-on-exec.
/// </summary>
internal sealed partial class ListenFds
{
    /// <summary>The first descriptor systemd passes (<c>SD_LISTEN_FDS_START</c>).</summary>
    public const int FirstDescriptor = 3;

    private static readonly Lazy<ListenFds> s_current = new(ReadEnvironment, LazyThreadSafetyMode.ExecutionAndPublication);

    private ListenFds(IReadOnlyList<(int Fd, string Name)> sockets, string? problem)
    {
        Sockets = sockets;
        Problem = problem;
    }

    /// <summary>This process's, read (and cleared) on first use.</summary>
    public static ListenFds Current => s_current.Value;

    /// <summary>The passed descriptors with their names (<c>unknown</c> where LISTEN_FDNAMES is unset, as systemd names them).</summary>
    public IReadOnlyList<(int Fd, string Name)> Sockets { get; }

    /// <summary>Why the variables were not used (LISTEN_PID is another process's, a malformed value); null when they were, or were unset.</summary>
    public string? Problem { get; }

    /// <summary>Interprets the three variables for the process <paramref name="currentPid"/>.</summary>
    public static ListenFds Parse(string? listenPid, string? listenFds, string? listenFdNames, int currentPid)
    {
        if (string.IsNullOrEmpty(listenFds))
        {
            return new ListenFds([], null);
        }

        if (!string.IsNullOrEmpty(listenPid))
        {
            if (!int.TryParse(listenPid, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0)
            {
                return new ListenFds([], $"LISTEN_PID '{listenPid}' is not a process id; the LISTEN_FDS sockets were ignored");
            }

            if (pid != currentPid)
            {
                return new ListenFds([], $"LISTEN_PID is {listenPid}, not this process ({currentPid.ToString(CultureInfo.InvariantCulture)}): the sockets were passed to another process and were ignored");
            }
        }

        if (!int.TryParse(listenFds, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count > 65536)
        {
            return new ListenFds([], $"LISTEN_FDS '{listenFds}' is not a number of descriptors; the sockets were ignored");
        }

        string[] names = string.IsNullOrEmpty(listenFdNames) ? [] : listenFdNames.Split(':');
        if (names.Length != 0 && names.Length != count)
        {
            return new ListenFds([], $"LISTEN_FDNAMES has {names.Length.ToString(CultureInfo.InvariantCulture)} name(s) for LISTEN_FDS={listenFds}; the sockets were ignored");
        }

        var sockets = new (int Fd, string Name)[count];
        for (int i = 0; i < count; i++)
        {
            sockets[i] = (FirstDescriptor + i, names.Length == 0 || names[i].Length == 0 ? "unknown" : names[i]);
        }

        return new ListenFds(sockets, null);
    }

    /// <summary>The descriptor named <paramref name="name"/>; -1 when none is, or when more than one is (then <paramref name="count"/> says how many).</summary>
    public int Find(string name, out int count)
    {
        int fd = -1;
        count = 0;
        foreach ((int candidate, string candidateName) in Sockets)
        {
            if (string.Equals(candidateName, name, StringComparison.Ordinal))
            {
                fd = candidate;
                count++;
            }
        }

        return count == 1 ? fd : -1;
    }

    /// <summary>Whether <paramref name="fd"/> is one of the passed descriptors.</summary>
    public bool Contains(int fd) => Sockets.Any(s => s.Fd == fd);

    /// <summary>What was passed, for messages: <c>3 (web), 4 (dns)</c>.</summary>
    public string Describe() => Sockets.Count == 0
        ? "none"
        : string.Join(", ", Sockets.Select(s => s.Fd.ToString(CultureInfo.InvariantCulture) + " (" + s.Name + ")"));

    private static ListenFds ReadEnvironment()
    {
        ListenFds fds = Parse(Environment.GetEnvironmentVariable("LISTEN_PID"), Environment.GetEnvironmentVariable("LISTEN_FDS"),
            Environment.GetEnvironmentVariable("LISTEN_FDNAMES"), Environment.ProcessId);
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        if (OperatingSystem.IsLinux())
        {
            foreach ((int fd, _) in fds.Sockets)
            {
                // Ours now: a process we start must not inherit them (sd_listen_fds does the same).
                _ = SetCloseOnExec(fd, FSetFd, FdCloExec);
            }
        }

        return fds;
    }

    private const int FSetFd = 2;
    private const int FdCloExec = 1;

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int SetCloseOnExec(int fd, int command, int flag);
}
