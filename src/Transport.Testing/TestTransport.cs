namespace Transport.Testing;

/// <summary>The transports a protocol can be tested on.</summary>
public enum TestTransport
{
    /// <summary><c>memory://</c>: in-process, no sockets.</summary>
    Memory,

    /// <summary><c>tcp://127.0.0.1:0</c>.</summary>
    Tcp,

    /// <summary><c>tcp://[::1]:0</c>.</summary>
    TcpIPv6,

    /// <summary><c>unix:</c> in a fresh temporary directory.</summary>
    Unix,

    /// <summary><c>udp://127.0.0.1:0</c>: each read is one datagram, each flush sends one.</summary>
    Udp,
}

/// <summary>
/// Lists of <see cref="TestTransport"/> for data-driven tests, e.g. xUnit's
/// <c>[MemberData(nameof(TestTransports.Streams), MemberType = typeof(TestTransports))]</c>.
/// </summary>
public static class TestTransports
{
    /// <summary>Every transport, one per row.</summary>
    public static IEnumerable<object[]> All => Rows(Enum.GetValues<TestTransport>());

    /// <summary>The byte-stream transports (all but UDP), one per row.</summary>
    public static IEnumerable<object[]> Streams => Rows(Enum.GetValues<TestTransport>().Where(t => !t.IsDatagram()));

    /// <summary>Whether reads and flushes on <paramref name="transport"/> are whole datagrams.</summary>
    /// <param name="transport">The transport.</param>
    /// <returns><see langword="true"/> for UDP.</returns>
    public static bool IsDatagram(this TestTransport transport) => transport == TestTransport.Udp;

    /// <summary>A URL that listens on <paramref name="transport"/> at a free address.</summary>
    /// <param name="transport">The transport.</param>
    /// <param name="tempDirectory">Where a Unix socket file goes.</param>
    /// <returns>The URL, e.g. <c>tcp://127.0.0.1:0</c>.</returns>
    public static string ListenUrl(this TestTransport transport, string tempDirectory) => transport switch
    {
        TestTransport.Memory => "memory://test-" + Guid.NewGuid().ToString("N"),
        TestTransport.Tcp => "tcp://127.0.0.1:0",
        TestTransport.TcpIPv6 => "tcp://[::1]:0",
        TestTransport.Unix => "unix:" + Path.Combine(tempDirectory, Guid.NewGuid().ToString("N")[..8] + ".sock"),
        TestTransport.Udp => "udp://127.0.0.1:0",
        _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, null),
    };

    private static IEnumerable<object[]> Rows(IEnumerable<TestTransport> transports) => transports.Select(t => new object[] { t });
}
