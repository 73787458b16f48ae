using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/GreetingHost and examples/GreetingClient, with the clients a user would point at them.</summary>
public sealed class GreetingHostTests : IAsyncLifetime
{
    private const string Page = "<b>You Connected to the Server!</b></br></br>Brought to you by: <a href=\"austingwalters.com\">Austin Walters!</a>";

    private readonly string _directory = EchoServer.NewTempDirectory();
    private ExampleProcess _host = null!;
    private string _socketPath = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _socketPath = Path.Combine(_directory, "greeting.sock");
        _host = ExampleProcess.Start("GreetingHost",
            "--Transport:Endpoints:http:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + _socketPath,
            "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0",
            "--DevCertificate:Directory=" + Path.Combine(_directory, "dev-certs"));
        Match http = await _host.WaitForLineAsync(@"^Waiting for connection on http://127\.0\.0\.1:(\d+) …$");
        await _host.WaitForLineAsync("^Waiting for connection on unix:" + Regex.Escape(_socketPath));
        _port = int.Parse(http.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [ToolFact("curl")]
    public async Task Curl_OverTcpAndUnixSocket_GetsStatusHeadersAndPage()
    {
        string curl = Tool.RequireOnPath("curl");

        var overTcp = await Tool.RunAsync(curl, ["-si", "--max-time", "10", $"http://127.0.0.1:{_port}/"]);
        var overUnix = await Tool.RunAsync(curl, ["-si", "--max-time", "10", "--unix-socket", _socketPath, "http://localhost/"]);

        foreach (var (exitCode, output, error) in new[] { overTcp, overUnix })
        {
            Assert.True(exitCode == 0, error);
            HttpAnswer answer = HttpAnswer.Parse(output);
            Assert.Equal("HTTP/1.0 200 OK", answer.StatusLine);
            Assert.Equal("text/html; charset=utf-8", answer.Header("Content-Type"));
            Assert.Equal("112", answer.Header("Content-Length"));
            Assert.NotNull(answer.Header("Date"));
            Assert.Equal(Page, answer.Body);
        }
    }

    [ToolFact("ab")]
    public async Task ApacheBench_TenThousandRequests_AllOkWithExactLength()
    {
        string ab = Tool.RequireOnPath("ab");

        var run = await Tool.RunAsync(ab, ["-q", "-n", "10000", "-c", "32", $"http://127.0.0.1:{_port}/"]);

        string report = Encoding.UTF8.GetString(run.Output);
        Assert.True(run.ExitCode == 0, report + run.Error);
        Assert.Matches(@"Complete requests:\s+10000\b", report);
        Assert.Matches(@"Failed requests:\s+0\b", report);
        Assert.Matches(@"Document Length:\s+112 bytes", report);
        Assert.DoesNotMatch("Non-2xx", report);
    }

    [ToolTheory("wrk")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Wrk_KeepAliveAndConnectionClose_NoErrors(bool close)
    {
        string wrk = Tool.RequireOnPath("wrk");
        List<string> args = ["-t1", "-c16", "-d2s"];
        if (close)
        {
            args.AddRange(["-H", "Connection: close"]);
        }

        var run = await Tool.RunAsync(wrk, [.. args, $"http://127.0.0.1:{_port}/"]);

        string report = Encoding.UTF8.GetString(run.Output);
        Assert.True(run.ExitCode == 0, report + run.Error);
        Assert.Matches(@"\d+ requests in", report);
        Assert.DoesNotMatch("Non-2xx", report);
        Assert.DoesNotMatch("Socket errors", report);
    }

    [Fact]
    public async Task GreetingClient_PrintsRequestLineSeparatorAndTheEntireAnswer()
    {
        var run = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("GreetingClient"), $"http://localhost:{_port}/"]);
        var overUnix = await Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("GreetingClient"), "unix:" + _socketPath]);

        foreach (var (exitCode, output, error) in new[] { run, overUnix })
        {
            Assert.True(exitCode == 0, error);
            string text = Encoding.UTF8.GetString(output);
            Assert.StartsWith("SENDING: GET / HTTP/1.0\n===\nHTTP/1.0 200 OK\r\n", text, StringComparison.Ordinal);
            Assert.EndsWith("\r\n\r\n" + Page, text, StringComparison.Ordinal);
        }
    }

    [ToolFact("chromium")]
    public async Task Chromium_Headless_ShowsTheGreeting()
    {
        var run = await Chromium.DumpDomAsync($"http://127.0.0.1:{_port}/", Path.Combine(_directory, "chromium-profile"));

        string dom = Encoding.UTF8.GetString(run.Output);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("<b>You Connected to the Server!</b>", dom, StringComparison.Ordinal);
        Assert.Contains("<a href=\"austingwalters.com\">Austin Walters!</a>", dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GreetingHost_SigtermExitsZero_AndRemovesItsSocketFile()
    {
        Assert.Equal(0, await _host.StopAsync());
        Assert.False(File.Exists(_socketPath));
    }
}

/// <summary>GreetingClient's failures: a non-zero exit code and one line that says why.</summary>
public sealed class GreetingClientFailureTests
{
    [Fact]
    public async Task UnresolvableHost()
    {
        var run = await RunClientAsync("http://no-such-host.invalid/");

        Assert.Equal(1, run.ExitCode);
        Assert.Matches(@"^error: cannot resolve host 'no-such-host\.invalid': .+\n$", run.Error);
    }

    [Fact]
    public async Task Refused()
    {
        using var unused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        unused.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)unused.LocalEndPoint!).Port;

        var run = await RunClientAsync($"http://127.0.0.1:{port}/");

        Assert.Equal(1, run.ExitCode);
        Assert.Matches(@"^error: Connection to tcp://127\.0\.0\.1:\d+ was refused: nothing listens there\.\n$", run.Error);
    }

    [Fact]
    public async Task ServerNeverAnswers_TimesOut()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen();

        var run = await RunClientAsync($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndPoint!).Port}/", "--timeout", "1");

        Assert.Equal(1, run.ExitCode);
        Assert.Matches(@"^error: timed out after 1 s waiting for http://127\.0\.0\.1:\d+/ \(0 bytes received\)\n$", run.Error);
    }

    [Fact]
    public async Task ServerResets_AfterPartOfTheAnswer()
    {
        using var rude = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        rude.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        rude.Listen();
        Task<(int ExitCode, byte[] Output, string Error)> client = RunClientAsync($"http://127.0.0.1:{((IPEndPoint)rude.LocalEndPoint!).Port}/");
        using (Socket accepted = await rude.AcceptAsync().DefaultTimeout())
        {
            var request = new byte[1024];
            await accepted.ReceiveAsync(request.AsMemory(), SocketFlags.None).AsTask().DefaultTimeout();
            await accepted.SendAsync("HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\npartial"u8.ToArray().AsMemory(), SocketFlags.None).AsTask().DefaultTimeout();
            accepted.LingerState = new LingerOption(true, 0);
        }

        var run = await client;

        Assert.Equal(1, run.ExitCode);
        Assert.Matches(@"^error: the server reset the connection after \d+ bytes: .+\n$", run.Error);
    }

    private static Task<(int ExitCode, byte[] Output, string Error)> RunClientAsync(params string[] args) =>
        Tool.RunAsync("dotnet", [ExampleProcess.AssemblyPath("GreetingClient"), .. args]);
}
