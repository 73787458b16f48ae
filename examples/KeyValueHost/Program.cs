using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.KeyValue;
using Transport.Sockets;

// A key-value server that speaks RESP2 (the Redis protocol) on every endpoint in appsettings.json: TCP port 6380
// and the Unix socket /tmp/transport/kv.sock by default. Try: redis-cli -p 6380 set k v; redis-cli -s /tmp/transport/kv.sock get k
// Override any value on the command line, e.g. --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Transport:Sockets:InlineCompletions (true in appsettings.json): socket completions run on .NET's epoll threads.
// Safe here because the RESP protocol and its lock-free store never block; it must be decided before any socket exists.
InlineSocketCompletions.EnableIfConfigured(builder.Configuration);

builder.Services.AddSingleton(builder.Configuration.GetSection("KeyValue").Get<KeyValueProtocolOptions>() ?? new KeyValueProtocolOptions());
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<KeyValueProtocol>("kv");

await builder.Build().RunAsync();
