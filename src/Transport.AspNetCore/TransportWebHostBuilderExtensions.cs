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
    /// <param name="configureSockets">
    /// Optional configuration of the socket transport. Here <see cref="SocketTransportOptions.InlineScheduling"/> defaults
    /// to <see langword="false"/>: Kestrel and the app run on the thread pool, as on Kestrel's own transport, so an endpoint
    /// that blocks holds a pool thread, not one of the transport's I/O threads. Set it to <see langword="true"/> only when
    /// no endpoint or middleware ever blocks: Kestrel then runs on the I/O thread that received the bytes (the fastest
    /// setting, see docs/aspnetcore.md).
    /// </param>
    /// <returns>The builder.</returns>
    public static IWebHostBuilder UseTransport(this IWebHostBuilder builder, Action<SocketTransportOptions>? configureSockets = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
        {
            // Endpoints and middleware may block (a synchronous call, a lock, .Result): by default they run on the thread
            // pool, as on Kestrel's own transport, and only the socket calls run on the transport's I/O threads. An app
            // whose code never blocks can set InlineScheduling back to true: Kestrel then runs on those threads too.
            services.AddSocketTransport(sockets =>
            {
                sockets.InlineScheduling = false;
                configureSockets?.Invoke(sockets);
            });
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
