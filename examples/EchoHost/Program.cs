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

// Transport:Sockets:InlineCompletions runs socket completions on .NET's epoll threads instead of queueing them
// to the thread pool; with the socket transport's inline scheduling the protocol then runs there too. Safe for
// echo, which never blocks; unsafe for a protocol that does (it would stall every socket on that thread).
// .NET reads the switch once, at the first socket operation of the process, so it is set here, before the
// host exists, and cannot be an option of the transport.
if (builder.Configuration.GetValue<bool>("Transport:Sockets:InlineCompletions"))
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<EchoProtocol>("echo");

await builder.Build().RunAsync();
