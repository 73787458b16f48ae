#region docs:greeting-registration
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Transport.Protocols.Greeting;
#endregion

internal static class GreetingRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:greeting-registration
        builder.Services.Configure<GreetingOptions>(builder.Configuration.GetSection("Greeting"));
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<GreetingProtocol>("greeting");
        #endregion
    }
}
