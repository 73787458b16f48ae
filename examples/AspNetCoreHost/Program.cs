// A minimal API on Kestrel, on Transport's socket transport: the benchmark harness's Kestrel peer (GET / returns
// the greeting page) plus POST /echo.
//   AspNetCoreHost [--port P] [--uds PATH] [--protocols Http1|Http2|Http1AndHttp2] [--kestrel-sockets] [--no-inline-scheduling]
// --kestrel-sockets runs the same app on Kestrel's own socket transport, for a like-for-like comparison.
// Its endpoints never block, so it opts into SocketTransportOptions.InlineScheduling (UseTransport's default is off):
// Kestrel runs on the transport's I/O thread that received the request. --no-inline-scheduling keeps the default
// (Kestrel and the endpoints on the thread pool, as on Kestrel's own transport).
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

const string Page =
    "<b>You Connected to the Server!</b></br></br>Brought to you by: <a href=\"austingwalters.com\">Austin Walters!</a>";

int? port = null;
string? uds = null;
HttpProtocols? protocols = null;
bool kestrelSockets = false;
bool inlineScheduling = true;
for (int i = 0; i < args.Length; i++)
{
    string arg = args[i];
    if (arg == "--port" && i + 1 < args.Length && int.TryParse(args[++i], out int p) && p is >= 0 and <= 65535)
    {
        port = p;
    }
    else if (arg == "--uds" && i + 1 < args.Length)
    {
        uds = args[++i];
    }
    else if (arg == "--protocols" && i + 1 < args.Length && Enum.TryParse(args[++i], ignoreCase: true, out HttpProtocols parsed))
    {
        protocols = parsed;
    }
    else if (arg == "--no-inline-scheduling")
    {
        inlineScheduling = false;
    }
    else if (arg == "--kestrel-sockets")
    {
        kestrelSockets = true;
    }
    else
    {
        return Usage($"bad argument '{arg}'");
    }
}

if (port is null && uds is null)
{
    return Usage("need --port and/or --uds");
}

WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
if (!kestrelSockets)
{
    builder.WebHost.UseTransport(sockets => sockets.InlineScheduling = inlineScheduling);
}
else if (uds is not null && File.Exists(uds))
{
    // As the harness's Kestrel peer does: a socket file left by an earlier run would fail the bind (ours replaces a stale one).
    File.Delete(uds);
}

builder.WebHost.ConfigureKestrel(kestrel =>
{
    Action<ListenOptions> configure = o => o.Protocols = protocols ?? o.Protocols;
    if (port is int tcp)
    {
        kestrel.Listen(IPAddress.Loopback, tcp, configure);
    }

    if (uds is not null)
    {
        kestrel.ListenUnixSocket(uds, configure);
    }
});

WebApplication app = builder.Build();
app.MapGet("/", () => Results.Content(Page, "text/html"));
app.MapPost("/echo", async (HttpContext context) =>
{
    using var body = new MemoryStream();
    await context.Request.Body.CopyToAsync(body, context.RequestAborted);
    context.Response.ContentType = "application/octet-stream";
    context.Response.ContentLength = body.Length;
    await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), context.RequestAborted);
});

await app.StartAsync();
foreach (string address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
{
    Console.WriteLine($"Listening on {address} ({(kestrelSockets ? "Kestrel's socket transport" : "Transport")})");
}

await app.WaitForShutdownAsync();
await app.DisposeAsync();
return 0;

static int Usage(string why)
{
    Console.Error.WriteLine($"AspNetCoreHost: {why}\nusage: AspNetCoreHost [--port P] [--uds PATH] [--protocols Http1|Http2|Http1AndHttp2] [--kestrel-sockets] [--no-inline-scheduling]");
    return 2;
}
