using Microsoft.Extensions.Hosting;
using Transport.Hosting;
using TransportProtocol1;

// Serves UpperLineProtocol on every endpoint of appsettings.json (tcp://127.0.0.1:7300 by default).
// Try: socat - TCP:127.0.0.1:7300. Override on the command line: --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,     // appsettings.json beside the program, wherever it starts
});
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<UpperLineProtocol>("upper");
return await builder.Build().RunTransportAsync();           // a bad value or a busy port: one line on stderr, exit 1
