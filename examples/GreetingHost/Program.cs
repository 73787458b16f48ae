using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Greeting;

// The tutorial's web server on Transport: the greeting page over HTTP/1.0 on every endpoint in
// appsettings.json (http://localhost:8080 and a Unix socket by default).
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Transport:Sockets:InlineCompletions is true in appsettings.json: the greeting server never blocks.
builder.Services.AddGreetingOptions(builder.Configuration.GetSection("Greeting"));
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<GreetingProtocol>("greeting");

using IHost host = builder.Build();
// A bad value or a busy port: one line on stderr and exit code 1.
if (!await host.TryStartAsync())
{
    return 1;
}

var endpoints = host.Services.GetRequiredService<IOptions<TransportServerOptions>>().Value.Endpoints;
foreach (IGrouping<string, TransportBinding> endpoint in host.Services.GetRequiredService<ITransportServer>().Bindings.GroupBy(b => b.Name))
{
    bool localhost = endpoints[endpoint.Key].Url?.Contains("://localhost:", StringComparison.OrdinalIgnoreCase) == true;
    Console.WriteLine($"Waiting for connection on {Describe(endpoint.First().EndPoint, localhost)} …");
}

await host.WaitForShutdownAsync();
return 0;

static string Describe(EndPoint endpoint, bool localhost) => endpoint switch
{
    IPEndPoint ip when localhost => $"http://localhost:{ip.Port}",
    IPEndPoint ip => $"http://{ip}",
    UnixDomainSocketEndPoint unix => $"unix:{unix} (curl --unix-socket {unix} http://localhost/)",
    _ => endpoint.ToString() ?? "?",
};
