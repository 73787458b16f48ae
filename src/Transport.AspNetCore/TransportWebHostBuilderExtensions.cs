using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport.Memory;
using Transport.Sockets;
using KestrelSocketTransportFactory = Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportFactory;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// Puts Kestrel on Transport's transports.
/// </summary>
public static class TransportWebHostBuilderExtensions
{
    /// <summary>
    /// Makes Kestrel accept its connections through Transport: TCP and Unix domain socket endpoints
    /// (<c>Listen</c>, <c>ListenLocalhost</c>, <c>ListenAnyIP</c>, <c>ListenUnixSocket</c>, URLs, the <c>Kestrel</c>
    /// configuration section) through Transport's socket transport instead of Kestrel's own, which keeps only what
    /// ours cannot bind (<c>ListenHandle</c>); <c>memory://</c> endpoints (<see cref="TransportKestrelServerOptionsExtensions.ListenMemory"/>)
    /// through the in-memory transport. Kestrel's HTTP/1.1, HTTP/2 and HTTPS run unchanged on top. Safe to call more
    /// than once.
    /// </summary>
    /// <param name="builder">The web host builder, e.g. <c>WebApplicationBuilder.WebHost</c>.</param>
    /// <param name="configureSockets">Optional configuration of the socket transport.</param>
    /// <returns>The builder.</returns>
    public static IWebHostBuilder UseTransport(this IWebHostBuilder builder, Action<SocketTransportOptions>? configureSockets = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
        {
            services.AddSocketTransport(configureSockets);
            services.AddMemoryTransport();

            // Per endpoint, Kestrel binds with the last registered factory whose CanBind accepts it. Its own socket
            // transport moves to the front, so ours (appended below) binds every TCP and Unix endpoint whatever the order
            // UseKestrel and UseTransport ran in, and Kestrel's still binds what ours cannot: the FileHandleEndPoint of
            // ListenHandle and systemd socket activation.
            for (int i = services.Count - 1; i >= 0; i--)
            {
                ServiceDescriptor d = services[i];
                if (d.ServiceType == typeof(IConnectionListenerFactory) && !d.IsKeyedService
                    && d.ImplementationType == typeof(KestrelSocketTransportFactory))
                {
                    services.RemoveAt(i);
                }
            }

            services.Insert(0, ServiceDescriptor.Singleton<IConnectionListenerFactory, KestrelSocketTransportFactory>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, SocketTransportFactory>(
                static sp => sp.GetRequiredService<SocketTransportFactory>()));
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, MemoryTransportFactory>(
                static sp => sp.GetRequiredService<MemoryTransportFactory>()));
        });
    }
}
