using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;

// An echo server (RFC 862) on every endpoint in appsettings.json: TCP, a Unix socket and UDP by default.
// Override any value on the command line, e.g. --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Everything under Transport, validated at start: endpoints, limits, and the transports' own options under
// Transport:Sockets (InlineCompletions is true in appsettings.json: echo never blocks) and Transport:Udp.
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<EchoProtocol>("echo");

// A bad value or a busy port: one line on stderr and exit code 1.
return await builder.Build().RunTransportAsync();
