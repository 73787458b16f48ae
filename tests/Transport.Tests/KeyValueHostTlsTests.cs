using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/KeyValueHost with a TLS port from configuration only, driven by redis-cli's own TLS client.</summary>
public sealed class KeyValueHostTlsTests : IAsyncLifetime
{
    private readonly TestCertificates _certificates = TestCertificates.Create();
    private ExampleProcess _host = null!;
    private string _port = null!;
    private string _plainPort = null!;

    public async Task InitializeAsync()
    {
        _host = ExampleProcess.Start("KeyValueHost", [
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_certificates.Directory, "kv.sock"),
            "--Transport:Endpoints:tls:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:tls:Protocol=kv",
            .. _certificates.EndpointArguments("tls"),
        ]);
        Match tls = await _host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tls', protocol 'kv'\)");
        Match plain = await _host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp', protocol 'kv'\)");
        _port = tls.Groups[1].Value;
        _plainPort = plain.Groups[1].Value;
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _certificates.Dispose();
    }

    [ToolFact("redis-cli")]
    public async Task RedisCliTls_VerifyingTheCertificate_PingSetGet_SameStoreAsThePlainPort()
    {
        string[] secure = ["--tls", "--cacert", _certificates.CertificatePath, "--sni", "localhost", "-h", "127.0.0.1", "-p", _port];

        Assert.Equal("PONG\n", await RedisCliAsync([.. secure, "ping"]));
        Assert.Equal("OK\n", await RedisCliAsync([.. secure, "set", "k", "over tls"]));
        Assert.Equal("over tls\n", await RedisCliAsync([.. secure, "get", "k"]));
        Assert.Equal("over tls\n", await RedisCliAsync(["-h", "127.0.0.1", "-p", _plainPort, "get", "k"]));

        // Several commands on one TLS connection, from standard input as in a script.
        var piped = await Tool.RunAsync(Tool.RequireOnPath("redis-cli"), secure, Encoding.ASCII.GetBytes("set n 41\nincr n\nget n\n"));
        Assert.Equal((0, "OK\n42\n42\n"), (piped.ExitCode, Encoding.ASCII.GetString(piped.Output)));

        Assert.Contains(_host.Output, l => l.Contains("Endpoint 'tls' runs each connection through: tls → protocol 'kv'", StringComparison.Ordinal));
        Assert.Equal(0, await _host.StopAsync());
        Assert.DoesNotContain(_host.Output, l => l.Contains("fail:", StringComparison.Ordinal) || l.Contains("crit:", StringComparison.Ordinal));
    }

    [ToolFact("redis-cli")]
    public async Task RedisCliTls_WithoutTrustingTheCertificate_Refuses()
    {
        var run = await Tool.RunAsync(Tool.RequireOnPath("redis-cli"), ["--tls", "-h", "127.0.0.1", "-p", _port, "ping"]);

        Assert.NotEqual(0, run.ExitCode);
        Assert.DoesNotContain("PONG", Encoding.ASCII.GetString(run.Output), StringComparison.Ordinal);
        Assert.Contains("certificate verify failed", Encoding.ASCII.GetString(run.Output) + run.Error, StringComparison.Ordinal);
    }

    [ToolFact("redis-cli")]
    public async Task PlainRedisCliToTheTlsPort_GetsNoReply_AndTheHostKeepsServing()
    {
        string cli = Tool.RequireOnPath("redis-cli");

        var wrong = await Tool.RunAsync(cli, ["-h", "127.0.0.1", "-p", _port, "set", "k", "plain"]);
        string right = await RedisCliAsync(["--tls", "--cacert", _certificates.CertificatePath, "-h", "127.0.0.1", "-p", _port, "get", "k"]);

        Assert.NotEqual(0, wrong.ExitCode);
        Assert.DoesNotContain("OK", Encoding.ASCII.GetString(wrong.Output), StringComparison.Ordinal);
        Assert.Equal("\n", right); // the plaintext SET never reached the store
        Assert.False(_host.HasExited);
        Assert.DoesNotContain(_host.Output, l => l.Contains("fail:", StringComparison.Ordinal) || l.Contains("crit:", StringComparison.Ordinal));
    }

    private static async Task<string> RedisCliAsync(string[] args)
    {
        var run = await Tool.RunAsync(Tool.RequireOnPath("redis-cli"), args);
        Assert.True(run.ExitCode == 0, $"redis-cli {string.Join(' ', args)} exited {run.ExitCode}: {run.Error}");
        return Encoding.UTF8.GetString(run.Output);
    }
}
