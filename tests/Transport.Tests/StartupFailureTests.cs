using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Transport.Tests;

/// <summary>
/// Every example host, run as a user runs it: a bad value, a wrong type or a busy port is one line on stderr
/// (the validator's message), no stack trace, and exit code 1.
/// </summary>
public sealed class StartupFailureTests : IDisposable
{
    private readonly string _directory = EchoServer.NewTempDirectory();

    public static TheoryData<string> Hosts => ["EchoHost", "GreetingHost", "KeyValueHost"];

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Theory, MemberData(nameof(Hosts))]
    public async Task BadValue_IsOneLineOnStderr_AndExitCode1(string example)
    {
        var result = await RunAsync(example, "--Transport:Sockets:Backlog=0");

        AssertOneLineFailure(result, "Transport:Sockets:Backlog is 0; it must be from 1 to 65535.");
    }

    [Theory, MemberData(nameof(Hosts))]
    public async Task WrongType_IsOneLineOnStderr_AndExitCode1(string example)
    {
        var result = await RunAsync(example, "--Transport:Limits:MaxConcurrentConnections=abc");

        AssertOneLineFailure(result, "Transport:Limits:MaxConcurrentConnections is 'abc'; it must be a whole number.");
    }

    [Theory, MemberData(nameof(Hosts))]
    public async Task BusyPort_IsOneLineOnStderr_NamingTheEndpoint_AndExitCode1(string example)
    {
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.Listen();
        int port = ((IPEndPoint)other.LocalEndPoint!).Port;

        var result = await RunAsync(example, $"--Transport:Endpoints:{TcpEndpoint(example)}:Url=tcp://127.0.0.1:{port}");

        AssertOneLineFailure(result, $"Transport:Endpoints:{TcpEndpoint(example)} ('tcp://127.0.0.1:{port}'): ");
    }

    [Theory]
    [InlineData("GreetingHost", "--Greeting:MaxRequestLineLength=8", "Greeting:MaxRequestLineLength is 8; it must be at least 16.")]
    [InlineData("GreetingHost", "--Greeting:KeepAliveTimeout=later", "Greeting:KeepAliveTimeout is 'later'; it must be a time span such as 00:00:10.")]
    [InlineData("KeyValueHost", "--KeyValue:MaxRequestSize=100", "KeyValue:MaxRequestSize is 100; it must be at least 1024 (bytes).")]
    [InlineData("KeyValueHost", "--KeyValue:PubSubOutputLimit=32MB", "KeyValue:PubSubOutputLimit is '32MB'; it must be a whole number.")]
    public async Task BadPluginOption_IsOneLineOnStderr_AndExitCode1(string example, string setting, string expected)
    {
        var result = await RunAsync(example, setting);

        AssertOneLineFailure(result, expected);
    }

    private static void AssertOneLineFailure((int ExitCode, byte[] Output, string Error) result, string expected)
    {
        string stdout = Encoding.UTF8.GetString(result.Output);
        Assert.True(result.ExitCode == 1, $"exit code {result.ExitCode}\nstderr:\n{result.Error}\nstdout:\n{stdout}");
        string[] lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "stderr is not one line:\n" + result.Error);
        Assert.StartsWith(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(expected, stdout, StringComparison.Ordinal);
    }

    private static string TcpEndpoint(string example) => example == "GreetingHost" ? "http" : "tcp";

    /// <summary>Runs the host on free addresses of this test's own, so it never touches the defaults (8080, 8443, 7007, 6380) or the user's development certificate.</summary>
    private Task<(int ExitCode, byte[] Output, string Error)> RunAsync(string example, string setting)
    {
        List<string> args =
        [
            ExampleProcess.AssemblyPath(example),
            $"--Transport:Endpoints:{TcpEndpoint(example)}:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, example + ".sock"),
        ];
        if (example == "EchoHost")
        {
            args.Add("--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        }

        if (example == "GreetingHost")
        {
            args.Add("--Transport:Endpoints:https:Url=tcp://127.0.0.1:0");
            args.Add("--DevCertificate:Directory=" + Path.Combine(_directory, "dev-certs"));
        }

        // Last, so that it overrides the endpoint above when it names the same key.
        args.Add(setting);
        return Tool.RunAsync("dotnet", args);
    }
}
