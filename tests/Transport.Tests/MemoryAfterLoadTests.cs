using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>
/// examples/EchoHost after bursts of clients that send and never read: the memory their buffers took comes back
/// once they are gone, every time (issue 8: "memory only goes up").
/// </summary>
/// <remarks>
/// Margins, chosen for a loaded 2-core CI box. Each burst is 100 connections that each send 8 MiB and read
/// nothing: the echo's output backs up (the kernel's send buffer takes up to 4 MiB of it first), then the host
/// buffers about 1 MiB per connection (its read limit) and stops reading. The test waits until the host's RSS has risen by at least 64 MiB, so that a host that kept even a third of the
/// burst would fail. It then expects RSS back within 1.5 times the baseline, the issue's target: the headroom
/// (about 22 MiB on a 45 MiB baseline) is for what legitimately stays, such as code compiled during the burst and
/// the thread pool's new threads; measured, the host came back to within a few MiB of its baseline. With a 1 s trim
/// interval the memory returns about 2 s after the burst ends; the 30 s bound on the wait leaves ten times that.
/// </remarks>
public sealed class MemoryAfterLoadTests : IDisposable
{
    private const int Connections = 100;
    private const int BytesPerConnection = 8 * 1024 * 1024;
    private const long BurstRise = 64L * 1024 * 1024;

    private readonly string _directory = EchoServer.NewTempDirectory();

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task EchoHost_AfterEachBurstOfStalledReaders_ComesBackToWithinOneAndAHalfTimesItsBaseline()
    {
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
            "--Transport:Sockets:MemoryPoolTrimInterval=00:00:01");
        Match tcp = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp'");
        var endpoint = new IPEndPoint(IPAddress.Loopback, int.Parse(tcp.Groups[1].Value, CultureInfo.InvariantCulture));
        await EchoOnceAsync(endpoint);
        long baseline = Rss(host.Id);
        long limit = baseline * 3 / 2;

        for (int round = 1; round <= 2; round++)
        {
            long peak = await BurstOfStalledReadersAsync(endpoint, host.Id, baseline);

            long after = await RssOnceAtMostAsync(host.Id, limit);

            Assert.True(after <= limit,
                $"round {round}: RSS stayed at {Mib(after)} MiB after the burst (baseline {Mib(baseline)} MiB, peak {Mib(peak)} MiB, limit {Mib(limit)} MiB)");
        }

        await EchoOnceAsync(endpoint);
    }

    /// <summary>Opens the connections, lets each send without reading until the host holds the burst, then resets them all.</summary>
    /// <returns>The host's RSS while it held the burst.</returns>
    private static async Task<long> BurstOfStalledReadersAsync(IPEndPoint endpoint, int pid, long baseline)
    {
        var sockets = new List<Socket>();
        var sends = new List<Task>();
        byte[] payload = ConnectionTestExtensions.RandomBytes(BytesPerConnection);
        try
        {
            for (int i = 0; i < Connections; i++)
            {
                // A small receive buffer: the echo backs up in the host, not in this process's kernel buffers.
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
                sockets.Add(socket);
                await socket.ConnectAsync(endpoint).DefaultTimeout();
                sends.Add(socket.SendAsync(payload, SocketFlags.None));
            }

            // No event says "the host's pipes are full"; its memory is the state we wait for.
            await TestTimeouts.UntilAsync(() => Rss(pid) >= baseline + BurstRise);
            return Rss(pid);
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose(); // unread data: the host sees a reset, as from a client that crashed
            }

            // The sends end with the sockets (most of them faulted); only their ending matters here.
            await Task.WhenAll(sends.Select(s => s.ContinueWith(static _ => { }, CancellationToken.None,
                TaskContinuationOptions.None, TaskScheduler.Default))).DefaultTimeout();
        }
    }

    private static async Task<long> RssOnceAtMostAsync(int pid, long limit)
    {
        try
        {
            await TestTimeouts.UntilAsync(() => Rss(pid) <= limit);
        }
        catch (OperationCanceledException)
        {
            // The assertion reports the figure.
        }

        return Rss(pid);
    }

    private static async Task EchoOnceAsync(IPEndPoint endpoint)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint).DefaultTimeout();
        byte[] message = "still serving\n"u8.ToArray();
        await socket.SendAsync(message, SocketFlags.None).DefaultTimeout();
        byte[] echo = new byte[message.Length];
        int received = 0;
        while (received < echo.Length)
        {
            int n = await socket.ReceiveAsync(echo.AsMemory(received), SocketFlags.None).DefaultTimeout();
            Assert.NotEqual(0, n);
            received += n;
        }

        Assert.Equal(message, echo);
    }

    /// <summary>The resident set size of process <paramref name="pid"/>, in bytes (Linux: /proc/PID/status).</summary>
    private static long Rss(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"no VmRSS for process {pid}");
    }

    private static long Mib(long bytes) => bytes / (1024 * 1024);
}
