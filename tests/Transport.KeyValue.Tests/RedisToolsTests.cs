using System.Text;
using System.Text.RegularExpressions;

namespace Transport.KeyValue.Tests;

/// <summary>
/// examples/KeyValueHost run as a user runs it, against the real, independently written Redis clients:
/// redis-cli and redis-benchmark (Debian redis-tools; .ci/run installs it).
/// </summary>
public sealed class RedisToolsTests : IDisposable
{
    private readonly string _directory = KeyValueServer.NewTempDirectory();

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task RedisCli_SetOverTcp_GetOverUnix_OneStore_ThenSigtermExitsCleanly()
    {
        string cli = Tool.RequireOnPath("redis-cli");
        (ExampleProcess host, string port, string socket) = await StartHostAsync();
        await using (host)
        {
            Assert.Equal("OK\n", await RunAsync(cli, "-p", port, "set", "k", "v"));
            Assert.Equal("v\n", await RunAsync(cli, "-s", socket, "get", "k"));
            Assert.Equal("PONG\n", await RunAsync(cli, "-s", socket, "ping"));
            Assert.Equal("1\n2\n", await RunAsync(cli, "-p", port, "incr", "n") + await RunAsync(cli, "-p", port, "incr", "n"));
            Assert.Equal("v\n2\n\n", await RunAsync(cli, "-p", port, "mget", "k", "n", "missing"));
            Assert.Equal("OK\n", await RunAsync(cli, "-p", port, "set", "e", "1", "ex", "100"));
            Assert.Equal("100\n", await RunAsync(cli, "-p", port, "ttl", "e"));
            Assert.StartsWith("ERR unknown command 'nosuch', with args beginning with: 'x' \n", await RunAsync(cli, "-p", port, "nosuch", "x"), StringComparison.Ordinal);

            // Several commands on one connection, read from standard input, as in a script.
            var piped = await Tool.RunAsync(cli, ["-p", port], Encoding.ASCII.GetBytes("set a 1\nincr a\nget a\nexists a b\ndel a\n"));
            Assert.Equal((0, "OK\n2\n2\n1\n1\n"), (piped.ExitCode, Encoding.ASCII.GetString(piped.Output)));

            Assert.Equal(0, await host.StopAsync());
            Assert.False(File.Exists(socket), "the socket file was left behind");
            Assert.DoesNotContain(host.Output, l => l.Contains("fail:", StringComparison.Ordinal) || l.Contains("crit:", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("tcp", 1)]
    [InlineData("tcp", 16)]
    [InlineData("unix", 16)]
    public async Task RedisBenchmark_SetGet_CompletesEveryRequest(string transport, int pipeline)
    {
        string benchmark = Tool.RequireOnPath("redis-benchmark");
        (ExampleProcess host, string port, string socket) = await StartHostAsync();
        await using (host)
        {
            string[] target = transport == "tcp" ? ["-p", port] : ["-s", socket];
            var run = await Tool.RunAsync(benchmark, [.. target, "-t", "set,get", "-n", "20000", "-c", "20", "-P", pipeline.ToString(System.Globalization.CultureInfo.InvariantCulture), "-q"]);
            string output = Encoding.ASCII.GetString(run.Output);

            Assert.True(run.ExitCode == 0, $"redis-benchmark exited {run.ExitCode}: {output} {run.Error}");
            Assert.Matches(new Regex(@"SET: [\d.]+ requests per second"), output);
            Assert.Matches(new Regex(@"GET: [\d.]+ requests per second"), output);
            Assert.DoesNotContain("WARNING", run.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("ERROR", run.Error, StringComparison.Ordinal);
            Assert.DoesNotContain(host.Output, l => l.Contains("fail:", StringComparison.Ordinal));
        }
    }

    private async Task<(ExampleProcess Host, string Port, string Socket)> StartHostAsync()
    {
        string socket = Path.Combine(_directory, "kv.sock");
        ExampleProcess host = ExampleProcess.Start("KeyValueHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + socket);
        try
        {
            Match tcp = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp', protocol 'kv'\)");
            await host.WaitForLineAsync("Listening on unix:" + Regex.Escape(socket));
            return (host, tcp.Groups[1].Value, socket);
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    private static async Task<string> RunAsync(string cli, params string[] args)
    {
        var run = await Tool.RunAsync(cli, args);
        Assert.True(run.ExitCode == 0, $"{cli} {string.Join(' ', args)} exited {run.ExitCode}: {run.Error}");
        return Encoding.UTF8.GetString(run.Output);
    }
}
