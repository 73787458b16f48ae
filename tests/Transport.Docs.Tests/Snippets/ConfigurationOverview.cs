#region docs:configuration-overview
using Transport.Hosting;
using Transport.Protocols.Greeting;
#endregion

internal static class ConfigurationOverview
{
    public static async Task<int> RunAsync(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:configuration-overview
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))   // Endpoints, Limits, Registry, Sockets, Udp
            .AddProtocol<GreetingProtocol>("greeting");
        builder.Services.AddGreetingOptions(builder.Configuration.GetSection("Greeting"));
        return await builder.Build().RunTransportAsync();   // a startup failure: one line on stderr, exit code 1
        #endregion
    }
}
