using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Transport.Udp.Internal;

namespace Transport.Udp;

/// <summary>
/// Registers the UDP transport.
/// </summary>
public static class UdpTransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the UDP transport (<c>udp://</c> endpoints) as an <see cref="ITransportFactory"/>, with
    /// <see cref="UdpTransportOptions"/> validated when the host starts. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of <see cref="UdpTransportOptions"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddUdpTransport(this IServiceCollection services, Action<UdpTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<UdpTransportOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<UdpTransportOptions>>(
            new UdpTransportOptionsValidator(nameof(UdpTransportOptions), null)));
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<UdpTransportFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransportFactory, UdpTransportFactory>(
            static sp => sp.GetRequiredService<UdpTransportFactory>()));
        return services;
    }

    /// <summary>
    /// Adds the UDP transport with <see cref="UdpTransportOptions"/> bound from <paramref name="configuration"/>
    /// (e.g. <c>Transport:Udp</c>). A value of the wrong type or out of range fails the host at start, naming its
    /// full key. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section with the options' keys (<c>MaxSessions</c>, <c>SessionIdleTimeout</c>, …).</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddUdpTransport(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddUdpTransport();
        services.AddValidatedOptions<UdpTransportOptions>(configuration, UdpTransportOptionsValidator.Schema, static (section, options) => section.Bind(options),
            new UdpTransportOptionsValidator((configuration as IConfigurationSection)?.Path ?? "", configuration));
        return services;
    }
}
