#region docs:keyvalue-registration
using Transport.Hosting;
using Transport.Protocols.KeyValue;
#endregion

internal static class KeyValueRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:keyvalue-registration
        builder.Services.AddKeyValueOptions(builder.Configuration.GetSection("KeyValue"));   // validated at start
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<KeyValueProtocol>("kv");                   // one store for every endpoint that names "kv"
        #endregion
    }
}
