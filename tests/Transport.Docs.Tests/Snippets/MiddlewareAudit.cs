#region docs:middleware-audit
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;
#endregion

#region docs:middleware-audit
public sealed class AuditOptions
{
    public string Prefix { get; set; } = "";
}

public sealed class AuditMiddleware(ILogger<AuditMiddleware> logger) : IConnectionMiddleware<AuditOptions>
{
    public ConnectionDelegate Create(ConnectionDelegate pipeline, AuditOptions options, ConnectionMiddlewareContext context) =>
        async connection =>
        {
            if (logger.IsEnabled(LogLevel.Information))
            {
                logger.LogInformation("{Prefix}: {Id} on {Endpoint}", options.Prefix, connection.ConnectionId, context.EndpointName);
            }

            await pipeline(connection);
        };
}
#endregion

internal static class MiddlewareAuditRegistration
{
    public static void Register(Microsoft.Extensions.Hosting.HostApplicationBuilder builder)
    {
        #region docs:middleware-audit
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<EchoProtocol>("echo")
            .AddConnectionMiddleware<AuditMiddleware, AuditOptions>("audit", static (section, options) => section.Bind(options));
        #endregion
    }
}
