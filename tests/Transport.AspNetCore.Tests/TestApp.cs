using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Transport.AspNetCore.Tests;

/// <summary>A real minimal-API app on Kestrel over one of our transports, on a free port, socket path or memory name.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private readonly string _tempDirectory;

    private TestApp(WebApplication app, TestTransport transport, string clientUrl, string tempDirectory, TestLoggerProvider logs)
    {
        App = app;
        Transport = transport;
        ClientUrl = clientUrl;
        _tempDirectory = tempDirectory;
        Logs = logs;
    }

    public WebApplication App { get; }

    public TestTransport Transport { get; }

    /// <summary>Where clients connect, as a Transport URL (port 0 resolved).</summary>
    public string ClientUrl { get; }

    public TestLoggerProvider Logs { get; }

    public static async Task<TestApp> StartAsync(TestTransport transport, Action<WebApplication> map,
        HttpProtocols protocols = HttpProtocols.Http1, Action<ListenOptions>? listen = null)
    {
        var logs = new TestLoggerProvider();
        string temp = Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
        string socketPath = Path.Combine(temp, "app.sock");
        string memoryName = "app-" + Guid.NewGuid().ToString("N");
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        builder.WebHost.UseTransport();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            Action<ListenOptions> configure = o =>
            {
                o.Protocols = protocols;
                listen?.Invoke(o);
            };
            switch (transport)
            {
                case TestTransport.Tcp:
                    kestrel.Listen(IPAddress.Loopback, 0, configure);
                    break;
                case TestTransport.TcpIPv6:
                    kestrel.Listen(IPAddress.IPv6Loopback, 0, configure);
                    break;
                case TestTransport.Unix:
                    Directory.CreateDirectory(temp);
                    kestrel.ListenUnixSocket(socketPath, configure);
                    break;
                case TestTransport.Memory:
                    kestrel.ListenMemory(memoryName, configure);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(transport), transport, "Kestrel serves byte streams, not datagrams.");
            }
        });
        WebApplication app = builder.Build();
        map(app);
        await app.StartAsync().DefaultTimeout();
        string clientUrl = transport switch
        {
            TestTransport.Unix => "unix:" + socketPath,
            TestTransport.Memory => "memory://" + memoryName,
            _ => "tcp://" + new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Authority,
        };
        return new TestApp(app, transport, clientUrl, temp, logs);
    }

    /// <summary>
    /// A client as a user of each transport would have it: plain <see cref="HttpClient"/> over TCP, ours over a Unix
    /// socket or memory.
    /// </summary>
    public HttpClient CreateClient(bool http2 = false, string scheme = "http", Action<SocketsHttpHandler>? configure = null)
    {
        SocketsHttpHandler handler = Transport is TestTransport.Tcp or TestTransport.TcpIPv6
            ? new SocketsHttpHandler()
            : App.Services.CreateTransportHttpHandler(ClientUrl);
        configure?.Invoke(handler);
        string authority = Transport is TestTransport.Tcp or TestTransport.TcpIPv6 ? ClientUrl["tcp://".Length..] : "localhost";
        var client = new HttpClient(handler) { BaseAddress = new Uri(scheme + "://" + authority + "/") };
        if (http2)
        {
            client.DefaultRequestVersion = HttpVersion.Version20;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync().DefaultTimeout();
            await App.DisposeAsync();
        }
        finally
        {
            if (Directory.Exists(_tempDirectory))
            {
                Directory.Delete(_tempDirectory, recursive: true);
            }
        }
    }
}
