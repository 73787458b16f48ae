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
// appsettings.json (http://localhost:8080, https://localhost:8443 and a Unix socket by default). An endpoint with a Tls
// section serves it over HTTPS, with its own Tls:Certificate or else a development certificate for localhost made at
// the first run (DevCertificate.cs; docs/tls.md#greetinghost-over-https).
HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);

// Transport:Sockets:InlineCompletions is true in appsettings.json: the greeting server never blocks.
// TLS endpoints without a certificate get the development one; where it cannot be written, they are left out with a
// warning, so that the plain endpoints still start on any machine.
List<string> needDevCertificate = DevCertificate.EndpointsNeedingIt(builder.Configuration);
string? devCertificateDirectory = DevCertificate.Directory(builder.Configuration);
(string Path, bool Created)? devCertificate = null;
string? devCertificateProblem = null;
if (needDevCertificate.Count > 0)
{
    try
    {
        var (certificatePath, keyPath, created) = DevCertificate.Ensure(
            devCertificateDirectory ?? throw new IOException("there is no home directory"), TimeProvider.System);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Transport:EndpointDefaults:Tls:Certificate:Path"] = certificatePath,
            ["Transport:EndpointDefaults:Tls:Certificate:KeyPath"] = keyPath,
        });
        devCertificate = (certificatePath, created);
    }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
    {
        devCertificateProblem = ex.Message;
        builder.Services.PostConfigure<TransportServerOptions>(options =>
        {
            foreach (string name in needDevCertificate)
            {
                options.Endpoints.Remove(name);
            }
        });
    }
}

builder.Services.AddGreetingOptions(builder.Configuration.GetSection("Greeting"));
builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
    .AddProtocol<GreetingProtocol>("greeting");

using IHost host = builder.Build();
ILogger logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("GreetingHost");
if (devCertificateProblem is not null)
{
    DevCertificate.Unavailable(logger, string.Join(", ", needDevCertificate.Select(n => $"'{n}'")), devCertificateDirectory ?? "(none)", devCertificateProblem);
}
else if (devCertificate is { Created: true } made)
{
    DevCertificate.Created(logger, made.Path);
}

// A bad value or a busy port: one line on stderr and exit code 1.
if (!await host.TryStartAsync())
{
    return 1;
}

var endpoints = host.Services.GetRequiredService<IOptions<TransportServerOptions>>().Value.Endpoints;
foreach (IGrouping<string, TransportBinding> endpoint in host.Services.GetRequiredService<ITransportServer>().Bindings.GroupBy(b => b.Name))
{
    TransportEndpointOptions options = endpoints[endpoint.Key];
    bool localhost = options.Url?.Contains("://localhost:", StringComparison.OrdinalIgnoreCase) == true;
    string scheme = options.Tls is { Enabled: not false } ? "https" : "http";
    Console.WriteLine($"Waiting for connection on {Describe(endpoint.First().EndPoint, localhost, scheme)} …");
}

await host.WaitForShutdownAsync();
return 0;

static string Describe(EndPoint endpoint, bool localhost, string scheme) => endpoint switch
{
    IPEndPoint ip when localhost => $"{scheme}://localhost:{ip.Port}",
    IPEndPoint ip => $"{scheme}://{ip}",
    UnixDomainSocketEndPoint unix => $"unix:{unix} (curl --unix-socket {unix} {scheme}://localhost/)",
    _ => endpoint.ToString() ?? "?",
};
