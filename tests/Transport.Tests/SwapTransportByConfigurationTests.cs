using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// The example host's own appsettings.json, with every URL swapped for memory:// by configuration alone:
/// the same host and protocol run in-process, no sockets. This is how a user tests their host.
/// </summary>
public sealed class SwapTransportByConfigurationTests
{
    [Fact]
    public async Task EchoHostAppSettings_WithMemoryUrls_RunInProcess()
    {
        string appsettings = Path.Combine(ExampleProcess.RepoRoot, "examples", "EchoHost", "appsettings.json");
        await using TransportTestServer server = await TransportTestServer.StartAsync(b =>
        {
            b.Host.Configuration.AddJsonFile(appsettings).AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Transport:Endpoints:tcp:Url"] = "memory://echo-tcp",
                ["Transport:Endpoints:unix:Url"] = "memory://echo-unix",
                ["Transport:Endpoints:udp:Url"] = "memory://echo-udp",
            });
            b.Host.Services.AddTransport(b.Host.Configuration.GetSection("Transport")).AddProtocol<EchoProtocol>("echo");
        });

        Assert.Equal(["memory://echo-tcp", "memory://echo-udp", "memory://echo-unix"], server.Bindings.Select(b => b.Url).Order());
        await using ConnectionContext client = await server.Client.ConnectAsync("memory://echo-tcp").DefaultTimeout();
        await client.SendAsync("in-process"u8.ToArray());
        await client.CompleteOutputAsync();
        Assert.Equal("in-process"u8.ToArray(), await client.ReceiveToEndAsync());
    }
}
