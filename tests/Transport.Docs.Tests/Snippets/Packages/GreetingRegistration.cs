#region docs:greeting-registration
using Transport.Hosting;
using Transport.Protocols.Greeting;
#endregion

internal static class GreetingRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:greeting-registration
        builder.Services.AddGreetingOptions(builder.Configuration.GetSection("Greeting"));   // validated at start
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<GreetingProtocol>("greeting");
        #endregion
    }
}
