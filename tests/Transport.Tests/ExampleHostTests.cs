using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/EchoHost and examples/EchoClient, run as a user runs them, against real external clients.</summary>
public sealed class ExampleHostTests : IDisposable
{
    private readonly string _directory = EchoServer.NewTempDirectory();

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [ToolFact("socat")]
    public async Task EchoHost_SocatOverTcpAndUnix_GetsOneMebibyteBackByteForByte_ThenSigtermExitsCleanly()
    {
        string socat = Tool.RequireOnPath("socat");
        string socketPath = Path.Combine(_directory, "echo.sock");
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + socketPath,
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        Match tcp = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp', protocol 'echo'\)");
        await host.WaitForLineAsync("Listening on unix:" + Regex.Escape(socketPath));
        byte[] payload = ConnectionTestExtensions.RandomBytes(1024 * 1024);

        var overTcp = await Tool.RunAsync(socat, ["-t", "10", "-", "TCP:127.0.0.1:" + tcp.Groups[1].Value], payload);
        var overUnix = await Tool.RunAsync(socat, ["-t", "10", "-", "UNIX-CONNECT:" + socketPath], payload);

        Assert.Equal(0, overTcp.ExitCode);
        Assert.True(payload.AsSpan().SequenceEqual(overTcp.Output), $"tcp echo differs: {overTcp.Output.Length} bytes back, {overTcp.Error}");
        Assert.Equal(0, overUnix.ExitCode);
        Assert.True(payload.AsSpan().SequenceEqual(overUnix.Output), $"unix echo differs: {overUnix.Output.Length} bytes back, {overUnix.Error}");

        Assert.Equal(0, await host.StopAsync());
        Assert.False(File.Exists(socketPath), "the socket file was left behind");
        Assert.Contains(host.Output, l => l.Contains("Stopped listening on unix:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task EchoClient_AgainstEchoHost_PrintsTheEcho_OverTcpAndUnix()
    {
        string socketPath = Path.Combine(_directory, "echo.sock");
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + socketPath,
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        Match tcp = await host.WaitForLineAsync(@"Listening on (tcp://127\.0\.0\.1:\d+)");
        await host.WaitForLineAsync("Listening on unix:");

        var overTcp = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), tcp.Groups[1].Value, "hello over tcp"]);
        var overUnix = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), "unix:" + socketPath, "hello over unix"]);

        Assert.Equal((0, "hello over tcp\n"), (overTcp.ExitCode, Encoding.UTF8.GetString(overTcp.Output)));
        Assert.Equal((0, "hello over unix\n"), (overUnix.ExitCode, Encoding.UTF8.GetString(overUnix.Output)));
    }

    [Fact]
    public async Task SocketsIoThreadCount_FromConfiguration_IsHowManyEpollThreadsTheProcessRuns()
    {
        // One more than any default of the runtime (one per CPU with inline completions, as EchoHost ships).
        int wanted = Environment.ProcessorCount + 1;
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Sockets:IoThreadCount=" + wanted.ToString(CultureInfo.InvariantCulture),
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0");
        Match tcp = await host.WaitForLineAsync(@"Listening on (tcp://127\.0\.0\.1:\d+)");
        var echoed = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), tcp.Groups[1].Value, "threads"]);
        Assert.Equal(0, echoed.ExitCode);

        // .NET names its epoll threads ".NET Sockets" and starts them all with the first socket it registers.
        int engines = Directory.GetDirectories($"/proc/{host.Id}/task").Count(task => ThreadName(task) == ".NET Sockets");
        Assert.Equal(wanted, engines);

        static string ThreadName(string task)
        {
            try
            {
                return File.ReadAllText(Path.Combine(task, "comm")).Trim();
            }
            catch (IOException)
            {
                return ""; // a thread-pool thread that ended while we looked
            }
        }
    }

    [Fact]
    public async Task EchoHost_WithTheConsoleExporter_PrintsTheConventionShapedInstrumentsAndTheAcceptSpan()
    {
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Telemetry:Console=true",
            "--Telemetry:ExportIntervalSeconds=1",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        Match tcp = await host.WaitForLineAsync(@"Listening on (tcp://127\.0\.0\.1:(\d+))");

        var echoed = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), tcp.Groups[1].Value, "counted"]);

        Assert.Equal(0, echoed.ExitCode);
        await host.WaitForLineAsync("^Metric Name: transport.connection.duration, .*Unit: s, Metric Type: Histogram");
        string endpoint = @"network\.protocol\.name: echo network\.transport: tcp network\.type: ipv4 server\.address: 127\.0\.0\.1 server\.port: "
            + tcp.Groups[2].Value + " transport\\.endpoint: tcp";
        await host.WaitForLineAsync("^\\(.*\\] network\\.io\\.direction: receive " + endpoint);
        await host.WaitForLineAsync(@"^Activity\.DisplayName:\s+transport\.accept$");
        Assert.Equal(0, await host.StopAsync());
    }

    [ToolFact("socat")]
    public async Task EchoHost_SocatOverUdp_GetsEachDatagramBack_AndEchoClientToo()
    {
        string socat = Tool.RequireOnPath("socat");
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        Match udp = await host.WaitForLineAsync(@"Listening on (udp://127\.0\.0\.1:(\d+)) \(endpoint 'udp', protocol 'echo'\)");

        var bySocat = await Tool.RunAsync(socat, ["-t", "2", "-", "UDP:127.0.0.1:" + udp.Groups[2].Value], "one datagram\n"u8.ToArray());
        var byClient = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), udp.Groups[1].Value, "hello over udp"]);

        Assert.Equal("one datagram\n", Encoding.UTF8.GetString(bySocat.Output));
        Assert.Equal((0, "hello over udp\n"), (byClient.ExitCode, Encoding.UTF8.GetString(byClient.Output)));
        Assert.Equal(0, await host.StopAsync());
    }

    [Fact]
    public async Task EchoClient_NothingListening_ExitsNonZeroWithOneLineReason()
    {
        var result = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("EchoClient"), "unix:" + Path.Combine(_directory, "none.sock"), "x"]);

        Assert.Equal(1, result.ExitCode);
        Assert.Matches(@"^error: Cannot connect to unix:.*none\.sock: there is no socket file at that path\.\n$", result.Error);
    }

    [Fact]
    public async Task EchoHost_BadUrlOnCommandLine_FailsAtStartNamingTheKey()
    {
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:70000",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");

        int exitCode = await host.WaitForExitAsync();

        Assert.NotEqual(0, exitCode);
        Assert.Contains(host.Output, l => l.Contains("Transport:Endpoints:tcp:Url 'tcp://127.0.0.1:70000' is not a valid endpoint URL", StringComparison.Ordinal));
    }
}
