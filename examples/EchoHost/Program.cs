using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Transport.Hosting;
using Transport.Protocols.Echo;
using Transport.Sockets;
using Transport.Udp;

// An echo server (RFC 862) on every endpoint in appsettings.json: TCP, a Unix socket and UDP by default.
// Override any value on the command line, e.g. --Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Transport:Sockets:InlineCompletions (true in appsettings.json): socket completions run on .NET's epoll threads.
// Safe here because echo never blocks; it must be decided before any socket exists, hence before the host.
InlineSocketCompletions.EnableIfConfigured(builder.Configuration);

// The transports' own options from configuration: Transport:Sockets (e.g. MemoryPoolTrimInterval) and
// Transport:Udp (e.g. MaxSessions, SessionIdleTimeout).
builder.Services.Configure<SocketTransportOptions>(builder.Configuration.GetSection("Transport:Sockets"));
builder.Services.Configure<UdpTransportOptions>(builder.Configuration.GetSection("Transport:Udp"));
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<EchoProtocol>("echo");

// --Telemetry:Console=true: the Transport meter and activity source through OpenTelemetry's console exporter, every
// Telemetry:ExportIntervalSeconds (10 by default). See docs/telemetry.md for dotnet-counters and OTLP.
if (builder.Configuration.GetValue<bool>("Telemetry:Console"))
{
    int interval = builder.Configuration.GetValue("Telemetry:ExportIntervalSeconds", 10);
    builder.Services.AddOpenTelemetry()
        .WithMetrics(metrics => metrics.AddMeter("Transport").AddConsoleExporter((_, reader) =>
            reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = interval * 1000))
        .WithTracing(tracing => tracing.AddSource("Transport").AddConsoleExporter());
}

await builder.Build().RunAsync();
