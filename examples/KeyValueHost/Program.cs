using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.KeyValue;

// A key-value server that speaks RESP2 (the Redis protocol) on every endpoint in appsettings.json: TCP port 6380
// and the Unix socket /tmp/transport/kv.sock by default. Try: redis-cli -p 6380 set k v; redis-cli -s /tmp/transport/kv.sock get k
// Override any value on the command line, e.g. --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0; an endpoint with a Tls
// section serves RESP over TLS for redis-cli --tls --cacert (docs/tls.md).
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Transport:Sockets:InlineCompletions is true in appsettings.json: the RESP protocol and its lock-free store never block.
builder.Services.AddKeyValueOptions(builder.Configuration.GetSection("KeyValue"));
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<KeyValueProtocol>("kv")
    // For an endpoint with "Protocol": "haproxy-agent": HAProxy's agent-check (docs/deploying.md#haproxy).
    .AddHaproxyAgent(builder.Configuration.GetSection("Transport:HaproxyAgent"));

// A bad value or a busy port: one line on stderr and exit code 1.
return await builder.Build().RunTransportAsync();
