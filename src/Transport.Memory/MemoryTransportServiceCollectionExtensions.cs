using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport;
using Transport.Memory;

namespace Transport.Memory;

/// <summary>
/// Registers the in-memory transport.
/// </summary>
public static class MemoryTransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the in-memory transport (<c>memory://name</c> endpoints) as an <see cref="ITransportFactory"/>.
    /// Listeners and clients meet only inside one service provider. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddMemoryTransport(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<MemoryTransportFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransportFactory, MemoryTransportFactory>(
            static sp => sp.GetRequiredService<MemoryTransportFactory>()));
        return services;
    }
}
