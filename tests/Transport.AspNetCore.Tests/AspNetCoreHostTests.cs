using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.AspNetCore.Tests;

/// <summary>examples/AspNetCoreHost as a process, with the clients a user points at a web server: curl and wrk.</summary>
public sealed class AspNetCoreHostTests : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
    private ExampleProcess _host = null!;
    private string _socketPath = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _socketPath = Path.Combine(_directory, "app.sock");
        _host = ExampleProcess.Start("AspNetCoreHost", "--port", "0", "--uds", _socketPath);
        Match tcp = await _host.WaitForLineAsync(@"^Listening on http://127\.0\.0\.1:(\d+) \(Transport\)$");
        await _host.WaitForLineAsync("^Listening on http://unix:" + Regex.Escape(_socketPath));
        _port = int.Parse(tcp.Groups[1].Value, CultureInfo.InvariantCulture);
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
    public async Task Curl_OverTcpAndUnixSocket_GetsThePageOverHttp11()
    {
        string curl = Tool.RequireOnPath("curl");

        var overTcp = await Tool.RunAsync(curl, ["-sS", "-i", "--max-time", "10", $"http://127.0.0.1:{_port}/"]);
        var overUnix = await Tool.RunAsync(curl, ["-sS", "-i", "--max-time", "10", "--unix-socket", _socketPath, "http://localhost/"]);

        foreach (var (exitCode, output, error) in new[] { overTcp, overUnix })
        {
            Assert.True(exitCode == 0, error);
            string answer = Encoding.UTF8.GetString(output);
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
            Assert.Contains("\r\nContent-Type: text/html\r\n", answer, StringComparison.Ordinal);
            Assert.EndsWith("\r\n\r\n" + KestrelOnTransportTests.Page, answer, StringComparison.Ordinal);
        }
    }

    [ToolFact("curl")]
    public async Task Curl_UploadsThreeMebibytes_AndGetsThemBackByteForByte()
    {
        string curl = Tool.RequireOnPath("curl");
        byte[] payload = ConnectionTestExtensions.RandomBytes(3 * 1024 * 1024);
        string file = Path.Combine(_directory, "upload.bin");
        await File.WriteAllBytesAsync(file, payload);

        var run = await Tool.RunAsync(curl, ["-sS", "--max-time", "20", "--data-binary", "@" + file, $"http://127.0.0.1:{_port}/echo"]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(payload.AsSpan().SequenceEqual(run.Output), $"got {run.Output.Length} bytes back, not the {payload.Length} sent");
    }

    [ToolFact("curl")]
    public async Task Curl_Http2PriorKnowledge_IsServedOverHttp2()
    {
        string curl = Tool.RequireOnPath("curl");
        await using ExampleProcess h2c = ExampleProcess.Start("AspNetCoreHost", "--port", "0", "--protocols", "Http2");
        Match listening = await h2c.WaitForLineAsync(@"^Listening on http://127\.0\.0\.1:(\d+) \(Transport\)$");

        var run = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}",
            $"http://127.0.0.1:{listening.Groups[1].Value}/"]);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(KestrelOnTransportTests.Page + "\n2 200", Encoding.UTF8.GetString(run.Output));
    }

    [ToolTheory("wrk")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Wrk_KeepAliveAndConnectionClose_NoErrors(bool close)
    {
        string wrk = Tool.RequireOnPath("wrk");
        List<string> args = ["-t1", "-c32", "-d2s"];
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
    public async Task Sigterm_ExitsZero_AndRemovesTheSocketFile()
    {
        Assert.Equal(0, await _host.StopAsync());
        Assert.False(File.Exists(_socketPath));
    }
}
