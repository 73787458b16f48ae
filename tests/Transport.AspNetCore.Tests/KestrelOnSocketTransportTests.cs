using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Sockets;

namespace Transport.AspNetCore.Tests;

/// <summary>
/// Our socket transport registered by hand as Kestrel's <see cref="IConnectionListenerFactory"/>: the contract alone,
/// without the Transport.AspNetCore extension. Kestrel aborts with a null reason from a ConnectionClosed callback.
/// </summary>
public sealed class KestrelOnSocketTransportTests
{
    [Fact]
    public async Task MinimalApi_OnOurSocketTransportAsKestrelsListenerFactory_ServesRequestAfterRequestOnNewConnections()
    {
        var logs = new TestLoggerProvider();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        builder.Services.AddSocketTransport();
        builder.Services.AddSingleton<IConnectionListenerFactory>(static sp => sp.GetRequiredService<SocketTransportFactory>());
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using WebApplication app = builder.Build();
        app.MapGet("/", () => "hello from Kestrel");
        await app.StartAsync().DefaultTimeout();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();

        for (int i = 0; i < 5; i++)
        {
            // A new connection each time, closed by the client after the answer: Kestrel sees the peer's FIN.
            using var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero });
            using var request = new HttpRequestMessage(HttpMethod.Get, address + "/");
            request.Headers.ConnectionClose = true;
            using HttpResponseMessage response = await client.SendAsync(request).DefaultTimeout();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hello from Kestrel", await response.Content.ReadAsStringAsync().DefaultTimeout());
        }

        await app.StopAsync().DefaultTimeout();
        Assert.Empty(logs.At(LogLevel.Error));
        Assert.Empty(logs.At(LogLevel.Critical));
    }

    [Fact]
    public async Task MinimalApi_ClientDisconnectsDuringARequest_RequestAbortedFires_AndTheServerCarriesOn()
    {
        var logs = new TestLoggerProvider();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        builder.Services.AddSocketTransport();
        builder.Services.AddSingleton<IConnectionListenerFactory>(static sp => sp.GetRequiredService<SocketTransportFactory>());
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using WebApplication app = builder.Build();
        app.MapGet("/", () => "hello from Kestrel");
        app.MapGet("/wait", async (HttpContext context) =>
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                aborted.TrySetResult();
            }
        });
        await app.StartAsync().DefaultTimeout();
        var endpoint = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

        using (var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await socket.ConnectAsync(IPAddress.Loopback, endpoint.Port).DefaultTimeout();
            await socket.SendAsync("GET /wait HTTP/1.1\r\nHost: test\r\n\r\n"u8.ToArray()).DefaultTimeout();
            await started.Task.DefaultTimeout();
        }

        // The peer's FIN reaches Kestrel through ConnectionClosed while the request runs; Kestrel aborts with a null reason.
        await aborted.Task.DefaultTimeout();
        using var client = new HttpClient();
        Assert.Equal("hello from Kestrel", await client.GetStringAsync(endpoint).DefaultTimeout());
        await app.StopAsync().DefaultTimeout();
        Assert.Empty(logs.At(LogLevel.Error));
        Assert.Empty(logs.At(LogLevel.Critical));
    }
}
