using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;

namespace Transport.KeyValue.Tests;

/// <summary>
/// Debian's HAProxy, unprivileged on loopback, with <c>send-proxy</c> (PROXY v1) or <c>send-proxy-v2</c> in front of
/// one KeyValueHost whose endpoint requires the PROXY protocol: the client's own address reaches the plugin
/// (<c>CLIENT INFO addr=</c>), whichever version HAProxy speaks.
/// </summary>
public sealed class HaproxyProxyProtocolTests : IAsyncLifetime
{
    private readonly string _directory = KeyValueServer.NewTempDirectory();
    private readonly ServiceProvider _client = new ServiceCollection().AddLogging().AddTransport().Services.BuildServiceProvider();
    private ExampleProcess? _host;
    private ExampleProcess? _haproxy;

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit v2 calls this (never IAsyncDisposable): haproxy and the host are killed whatever the test did.
    public async Task DisposeAsync()
    {
        if (_haproxy is not null)
        {
            await _haproxy.DisposeAsync();
        }

        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        await _client.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [ToolTheory("haproxy")]
    [InlineData("send-proxy", 1)]
    [InlineData("send-proxy-v2", 2)]
    public async Task ThroughHaproxy_ClientInfoShowsTheClientsOwnAddress(string option, int version)
    {
        Directory.CreateDirectory(_directory);
        _host = ExampleProcess.Start("KeyValueHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:tcp:ProxyProtocol:Mode=Required",
            "--Transport:Endpoints:tcp:ProxyProtocol:TrustedProxies:0=127.0.0.1",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "kv.sock"),
            "--Logging:LogLevel:Transport.Hosting=Debug");
        var listening = await _host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tcp', protocol 'kv'\)");
        int server = int.Parse(listening.Groups[1].Value, CultureInfo.InvariantCulture);
        int front = FreePort();
        string config = $"""
            defaults
                mode tcp
                timeout connect 2s
                timeout client 30s
                timeout server 30s
            frontend kv
                bind 127.0.0.1:{front}
                default_backend kv
            backend kv
                server kv1 127.0.0.1:{server} {option}
            """;
        string path = Path.Combine(_directory, "haproxy.cfg");
        await File.WriteAllTextAsync(path, config + "\n");   // haproxy refuses a last line without its LF
        _haproxy = ExampleProcess.StartProgram(Tool.RequireOnPath("haproxy"), "-f", path, "-db");

        await using ConnectionContext client = await ConnectWhenHaproxyListensAsync(front);
        Dictionary<string, string> info = ClientCommandsTests.Fields(await client.CallAsync("CLIENT", "INFO"));

        var self = (IPEndPoint)client.LocalEndPoint!;
        Assert.Equal($"127.0.0.1:{self.Port}", info["addr"]);
        Assert.Equal($"127.0.0.1:{front}", info["laddr"]);
        await _host.WaitForLineAsync($@"PROXY v{version} header from proxy 127\.0\.0\.1:\d+: client 127\.0\.0\.1:{self.Port}");
        Assert.Equal("OK", await client.CallAsync("QUIT"));
    }

    private async Task<ConnectionContext> ConnectWhenHaproxyListensAsync(int front)
    {
        IConnectionFactory factory = _client.GetRequiredService<IConnectionFactory>();
        using var timeout = new CancellationTokenSource(TestTimeouts.Default);
        while (true)
        {
            try
            {
                return await factory.ConnectAsync(new IPEndPoint(IPAddress.Loopback, front), timeout.Token).AsTask().DefaultTimeout();
            }
            catch (ConnectionRefusedException) when (!timeout.IsCancellationRequested)
            {
                Assert.False(_haproxy!.HasExited, "haproxy exited: " + string.Join('\n', _haproxy.Output));
                await Task.Delay(20);   // haproxy is still starting
            }
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
