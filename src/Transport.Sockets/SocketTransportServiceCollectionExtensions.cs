using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport;
using Transport.Sockets;

namespace Transport.Sockets;

/// <summary>
/// Registers the TCP and Unix domain socket transport.
/// </summary>
public static class SocketTransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the socket transport (<c>tcp://</c> and <c>unix:</c> endpoints) as an <see cref="ITransportFactory"/>.
    /// Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of <see cref="SocketTransportOptions"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddSocketTransport(this IServiceCollection services, Action<SocketTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<SocketTransportOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<SocketTransportFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransportFactory, SocketTransportFactory>(
            static sp => sp.GetRequiredService<SocketTransportFactory>()));
        return services;
    }
}
