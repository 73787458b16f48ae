#region docs:upper-line-registration
using Transport.Hosting;
#endregion

internal static class UpperLineRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:upper-line-registration
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<UpperLineProtocol>("upper");
        #endregion
    }
}
