using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/EchoHost run with a low RLIMIT_NOFILE, as a service with a small <c>LimitNOFILE=</c> runs.</summary>
public sealed class DescriptorLimitTests : IDisposable
{
    // The idle host holds about 150 descriptors (the runtime maps each assembly); this leaves room for about 100 connections.
    private const int OpenFileLimit = 256;

    private readonly string _directory = EchoServer.NewTempDirectory();

    public DescriptorLimitTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task EchoHost_OutOfDescriptors_KeepsServingOpenConnections_AndAcceptsAgainOnceDescriptorsAreFree()
    {
        string socketPath = Path.Combine(_directory, "echo.sock");
        await using ExampleProcess host = ExampleProcess.StartWithOpenFileLimit(OpenFileLimit, "EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + socketPath,
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
            "--Logging:LogLevel:Transport.Sockets=Debug");
        Match listening = await host.WaitForLineAsync(@"Listening on (tcp://127\.0\.0\.1:(\d+)) \(endpoint 'tcp'");
        await host.WaitForLineAsync("Listening on unix:" + Regex.Escape(socketPath));
        string tcpUrl = Regex.Escape(listening.Groups[1].Value);
        string unixUrl = Regex.Escape("unix:" + socketPath);
        var tcp = new IPEndPoint(IPAddress.Loopback, int.Parse(listening.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        var unix = new UnixDomainSocketEndPoint(socketPath);
        using Socket tcpAnchor = await ConnectAsync(tcp);
        using Socket unixAnchor = await ConnectAsync(unix);
        await AssertEchoesAsync(tcpAnchor, "tcp before");
        await AssertEchoesAsync(unixAnchor, "unix before");

        // Open connections, each confirmed by its echo, until the host says it cannot accept any more.
        Task<Match> tcpFailing = host.WaitForLineAsync(@"Transport\.Sockets\[8\] Accepting connections on " + tcpUrl + " failed");
        var extra = new List<Socket>();
        try
        {
            while (!tcpFailing.IsCompleted)
            {
                Assert.True(extra.Count < OpenFileLimit, $"{extra.Count} connections were accepted under a limit of {OpenFileLimit} descriptors:\n" + string.Join('\n', host.Output));
                Socket socket = await ConnectAsync(tcp);
                extra.Add(socket);
                await socket.SendAsync("x"u8.ToArray());
                await Task.WhenAny(socket.ReceiveAsync(new byte[1].AsMemory(), SocketFlags.None).AsTask(), tcpFailing).DefaultTimeout();
            }

            await tcpFailing;
            await host.WaitForLineAsync(@"Transport\.Sockets\[9\] Accepting connections on " + tcpUrl + " failed again");

            // Out of descriptors: a new connection on each endpoint waits in the kernel's queue, open ones carry on.
            using Socket queuedTcp = await ConnectAsync(tcp);
            using Socket queuedUnix = await ConnectAsync(unix);
            await queuedTcp.SendAsync("queued on tcp"u8.ToArray());
            await queuedUnix.SendAsync("queued on unix"u8.ToArray());
            await host.WaitForLineAsync(@"Transport\.Sockets\[8\] Accepting connections on " + unixUrl + " failed");
            await AssertEchoesAsync(tcpAnchor, "tcp during");
            await AssertEchoesAsync(unixAnchor, "unix during");

            foreach (Socket socket in extra)
            {
                socket.Dispose();
            }

            extra.Clear();

            // Descriptors are free again: the queued connections are accepted without anyone restarting anything.
            Assert.Equal("queued on tcp", await ReceiveAsync(queuedTcp, "queued on tcp".Length));
            Assert.Equal("queued on unix", await ReceiveAsync(queuedUnix, "queued on unix".Length));
        }
        finally
        {
            foreach (Socket socket in extra)
            {
                socket.Dispose();
            }
        }

        Match tcpRecovered = await host.WaitForLineAsync(@"Transport\.Sockets\[10\] Accepting connections on " + tcpUrl + @" again after (\d+) failed attempts");
        await host.WaitForLineAsync(@"Transport\.Sockets\[10\] Accepting connections on " + unixUrl + " again after");
        using Socket newTcp = await ConnectAsync(tcp);
        using Socket newUnix = await ConnectAsync(unix);
        await AssertEchoesAsync(newTcp, "tcp after");
        await AssertEchoesAsync(newUnix, "unix after");
        await AssertEchoesAsync(tcpAnchor, "tcp anchor after");

        // One Error line for the episode, however many attempts failed before it ended.
        Assert.True(int.Parse(tcpRecovered.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2, tcpRecovered.Value);
        AssertOneErrorLine(host.Output, tcpUrl);
        AssertOneErrorLine(host.Output, unixUrl);
        Assert.Equal(0, await host.StopAsync());
    }

    [Fact]
    public async Task EchoHost_ConnectionsPastTheLimit_ProcessSurvivesTheRuntimesOwnNeeds_AndServesOnceTheyAreGone()
    {
        // At the limit the runtime still starts threads (the JIT's background compiler, the thread pool), and .NET ends a
        // process that cannot start one ("Out of memory."): the transport must leave it the descriptors for that.
        await using ExampleProcess host = ExampleProcess.StartWithOpenFileLimit(OpenFileLimit, "EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
            "--Logging:LogLevel:Transport.Sockets=Debug");
        Match listening = await host.WaitForLineAsync(@"Listening on (tcp://127\.0\.0\.1:(\d+)) \(endpoint 'tcp'");
        string url = Regex.Escape(listening.Groups[1].Value);
        var tcp = new IPEndPoint(IPAddress.Loopback, int.Parse(listening.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        using Socket anchor = await ConnectAsync(tcp);
        await AssertEchoesAsync(anchor, "before");

        // More connections than descriptors, as fast as the kernel completes them (the listen queue holds the rest).
        var flood = new List<Socket>();
        try
        {
            for (int i = 0; i < OpenFileLimit; i++)
            {
                flood.Add(await ConnectAsync(tcp));
            }

            await host.WaitForLineAsync(@"Transport\.Sockets\[8\] Accepting connections on " + url + " failed");
            // Stay out of descriptors for a while (7 attempts: 0.6 s of backoff), long enough for the runtime to need some.
            await host.WaitForLineAsync(@"Transport\.Sockets\[9\] Accepting connections on " + url + @" failed again \(\w+\), 7 attempts");
            await AssertEchoesAsync(anchor, "during");
        }
        finally
        {
            foreach (Socket socket in flood)
            {
                socket.Dispose();
            }
        }

        await host.WaitForLineAsync(@"Transport\.Sockets\[10\] Accepting connections on " + url + " again");
        using Socket after = await ConnectAsync(tcp);
        await AssertEchoesAsync(after, "after");
        await AssertEchoesAsync(anchor, "anchor after");
        Assert.DoesNotContain(host.Output, l => l.Contains("Out of memory", StringComparison.Ordinal));
        Assert.Equal(0, await host.StopAsync());
    }

    private static void AssertOneErrorLine(IReadOnlyList<string> output, string url)
    {
        var failing = new Regex(@"^fail: Transport\.Sockets\[8\] Accepting connections on " + url + " failed");
        Assert.Single(output, failing.IsMatch);
    }

    private static async Task<Socket> ConnectAsync(EndPoint endpoint)
    {
        var socket = endpoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endpoint).DefaultTimeout();
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task AssertEchoesAsync(Socket socket, string text)
    {
        await socket.SendAsync(Encoding.ASCII.GetBytes(text)).DefaultTimeout();
        Assert.Equal(text, await ReceiveAsync(socket, text.Length));
    }

    private static async Task<string> ReceiveAsync(Socket socket, int length)
    {
        var buffer = new byte[length];
        int received = 0;
        while (received < length)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None).AsTask().DefaultTimeout();
            if (n == 0)
            {
                break;
            }

            received += n;
        }

        return Encoding.ASCII.GetString(buffer, 0, received);
    }
}
