#region docs:readme-hosting
using Microsoft.Extensions.Hosting;
using Transport.Hosting;
using Transport.Protocols.Echo;
#endregion

internal static class ReadmeHosting
{
    // The page shows these statements as a console app's Program.cs (top-level statements); .ci/packages.sh builds
    // and runs exactly that from the packed packages.
    public static async Task<int> RunAsync(string[] args)
    {
        #region docs:readme-hosting
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,     // appsettings.json beside the program, wherever it starts
        });
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<EchoProtocol>("echo");
        return await builder.Build().RunTransportAsync();           // a bad value or a busy port: one line on stderr, exit 1
        #endregion
    }
}
