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

    [ToolFact("redis-cli")]
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

    [ToolFact("redis-cli")]
    public async Task RedisCli_ClientInfoAndList_ShowItsOwnAddressNameAndOneLinePerConnection()
    {
        string cli = Tool.RequireOnPath("redis-cli");
        (ExampleProcess host, string port, string socket) = await StartHostAsync();
        await using (host)
        {
            // A second, named client stays connected (subscribed) while the first asks.
            await using ExampleProcess other = await SubscribeAsync(cli, ["-s", socket, "subscribe", "news"], "news");
            var piped = await Tool.RunAsync(cli, ["-p", port], Encoding.ASCII.GetBytes("client setname tool\nclient getname\nclient setname \"a b\"\nclient info\nclient list\n"));
            string[] lines = Encoding.ASCII.GetString(piped.Output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(0, piped.ExitCode);
            Assert.Equal(["OK", "tool", "ERR Client names cannot contain spaces, newlines or special characters."], lines[..3]);

            Dictionary<string, string> info = ClientCommandsTests.Fields(lines[3]);
            Assert.Matches(@"^127\.0\.0\.1:\d+$", info["addr"]);
            Assert.NotEqual("127.0.0.1:" + port, info["addr"]);
            Assert.Equal("127.0.0.1:" + port, info["laddr"]);
            Assert.Equal(("tool", "client|info", "0"), (info["name"], info["cmd"], info["db"]));

            // CLIENT LIST: the subscriber first (it connected first), then this client, one line each.
            Assert.Equal(6, lines.Length);
            Dictionary<string, string> listed = ClientCommandsTests.Fields(lines[4]);
            Assert.Equal((socket + ":0", "PU", "1", "subscribe"), (listed["addr"], listed["flags"], listed["sub"], listed["cmd"]));
            Assert.Equal(info["id"], ClientCommandsTests.Fields(lines[5])["id"]);
        }
    }

    [ToolTheory("redis-benchmark")]
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

    [ToolFact("redis-cli")]
    public async Task RedisCli_SubscribeOnOneTransport_ReceivesPublishFromTheOther()
    {
        string cli = Tool.RequireOnPath("redis-cli");
        (ExampleProcess host, string port, string socket) = await StartHostAsync();
        await using (host)
        {
            await using ExampleProcess overTcp = await SubscribeAsync(cli, ["-p", port, "subscribe", "news"], "news");
            await using ExampleProcess overUnix = await SubscribeAsync(cli, ["-s", socket, "psubscribe", "n*"], "n[*]");

            Assert.Equal("2\n", await RunAsync(cli, "-s", socket, "publish", "news", "hello from unix"));
            Assert.Equal("2\n", await RunAsync(cli, "-p", port, "publish", "news", "hello from tcp"));
            Assert.Equal("1\n", await RunAsync(cli, "-p", port, "publish", "nothing-else", "for patterns"));
            Assert.Equal("0\n", await RunAsync(cli, "-p", port, "publish", "other", "nobody"));

            await overTcp.WaitForLineAsync("^hello from tcp$");
            await overUnix.WaitForLineAsync("^for patterns$");
            Assert.Equal(["message", "news", "hello from unix", "message", "news", "hello from tcp"], overTcp.Output.Skip(3));
            Assert.Equal(["pmessage", "n*", "news", "hello from unix", "pmessage", "n*", "news", "hello from tcp", "pmessage", "n*", "nothing-else", "for patterns"],
                overUnix.Output.Skip(3));
            Assert.Equal("news\n", await RunAsync(cli, "-p", port, "pubsub", "channels"));
            Assert.Equal("news\n1\n", await RunAsync(cli, "-p", port, "pubsub", "numsub", "news"));
            Assert.DoesNotContain(host.Output, l => l.Contains("fail:", StringComparison.Ordinal));
        }
    }

    [ToolTheory("redis-cli")]
    [InlineData("tcp")]
    [InlineData("unix")]
    public async Task RedisCli_SubscriberThatStopsReading_IsDisconnectedPastTheLimit_AndServerMemoryStaysBounded(string transport)
    {
        string cli = Tool.RequireOnPath("redis-cli");
        (ExampleProcess host, string port, string socket) = await StartHostAsync("--KeyValue:PubSubOutputLimit=1048576");
        await using (host)
        {
            string[] target = transport == "tcp" ? ["-p", port] : ["-s", socket];
            await using ExampleProcess stalled = await SubscribeAsync(cli, [.. target, "subscribe", "flood"], "flood");
            long before = ResidentBytes(host.Id);

            // The subscriber stops reading (SIGSTOP); 256 MiB of messages are published to it.
            stalled.Signal("STOP");
            string payload = new('x', 64 * 1024);
            var flood = await Tool.RunAsync(cli, [.. target, "-r", "4096", "publish", "flood", payload]);
            string[] counts = Encoding.ASCII.GetString(flood.Output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            long after = ResidentBytes(host.Id);
            stalled.Signal("CONT");

            // It received until its 1 MiB outbox (behind the socket buffers) was full, then was disconnected for good:
            // every later publish has no receiver, and the server did not keep what it could not deliver.
            Assert.Equal(4096, counts.Length);
            Assert.Equal("1", counts[0]);
            Assert.Equal("0", counts[^1]);
            Assert.Equal(counts.Length, counts.TakeWhile(c => c == "1").Count() + counts.SkipWhile(c => c == "1").TakeWhile(c => c == "0").Count());
            Assert.True(after - before < 96L * 1024 * 1024, $"the server grew by {(after - before) / (1024 * 1024)} MiB while 256 MiB went to a stalled subscriber");
            Assert.Equal(1, await stalled.WaitForExitAsync());
            Assert.Contains(stalled.Output, l => l.StartsWith("Error: ", StringComparison.Ordinal));
            Assert.Equal("flood\n0\n", await RunAsync(cli, [.. target, "pubsub", "numsub", "flood"]));
            Assert.DoesNotContain(host.Output, l => l.Contains("fail:", StringComparison.Ordinal) || l.Contains("crit:", StringComparison.Ordinal));
        }
    }

    /// <summary>Starts <c>redis-cli subscribe</c> or <c>psubscribe</c> and waits until it has printed its confirmation.</summary>
    private static async Task<ExampleProcess> SubscribeAsync(string cli, string[] args, string channelPattern)
    {
        ExampleProcess client = ExampleProcess.StartProgram(cli, args);
        try
        {
            // redis-cli prints each reply element on its own line: "subscribe", the channel, then the count.
            await client.WaitForLineAsync("^[0-9]+$");
            Assert.Matches("^p?subscribe$", client.Output[0]);
            Assert.Matches("^" + channelPattern + "$", client.Output[1]);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>The resident memory of a process (VmRSS), in bytes.</summary>
    private static long ResidentBytes(int pid)
    {
        string line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    private async Task<(ExampleProcess Host, string Port, string Socket)> StartHostAsync(params string[] settings)
    {
        string socket = Path.Combine(_directory, "kv.sock");
        ExampleProcess host = ExampleProcess.Start("KeyValueHost",
            ["--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0", "--Transport:Endpoints:unix:Url=unix:" + socket, .. settings]);
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
