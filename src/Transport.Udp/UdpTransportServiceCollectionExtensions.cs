using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport;
using Transport.Udp;

namespace Transport.Udp;

/// <summary>
/// Registers the UDP transport.
/// </summary>
public static class UdpTransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the UDP transport (<c>udp://</c> endpoints) as an <see cref="ITransportFactory"/>. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of <see cref="UdpTransportOptions"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddUdpTransport(this IServiceCollection services, Action<UdpTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<UdpTransportOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<UdpTransportFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransportFactory, UdpTransportFactory>(
            static sp => sp.GetRequiredService<UdpTransportFactory>()));
        return services;
    }
}
