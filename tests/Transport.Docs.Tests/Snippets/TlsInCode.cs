#region docs:tls-in-code
using Transport.Hosting;
using Transport.Protocols.Echo;
#endregion

internal static class TlsInCode
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:tls-in-code
        builder.Services.AddTransport()
            .AddProtocol<EchoProtocol>("echo")
            .Listen("tcp://127.0.0.1:7443", "echo", endpoint =>
            {
                endpoint.Tls = new TransportTlsOptions { Certificate = { Path = "server.pem", KeyPath = "server.key" } };
                endpoint.AddMiddleware("logging");
            });
        #endregion
    }
}
