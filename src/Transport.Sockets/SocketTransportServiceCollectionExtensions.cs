using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Transport.Sockets.Internal;

namespace Transport.Sockets;

/// <summary>
/// Registers the TCP and Unix domain socket transport.
/// </summary>
public static class SocketTransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the socket transport (<c>tcp://</c> and <c>unix:</c> endpoints) as an <see cref="ITransportFactory"/>, with
    /// <see cref="SocketTransportOptions"/> validated when the host starts. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Optional configuration of <see cref="SocketTransportOptions"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddSocketTransport(this IServiceCollection services, Action<SocketTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<SocketTransportOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SocketTransportOptions>>(
            new SocketTransportOptionsValidator(nameof(SocketTransportOptions), null)));
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<SocketTransportFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ITransportFactory, SocketTransportFactory>(
            static sp => sp.GetRequiredService<SocketTransportFactory>()));
        return services;
    }

    /// <summary>
    /// Adds the socket transport with <see cref="SocketTransportOptions"/> bound from <paramref name="configuration"/>
    /// (e.g. <c>Transport:Sockets</c>). A value of the wrong type or out of range fails the host at start, naming its
    /// full key. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section with the options' keys (<c>Backlog</c>, <c>NoDelay</c>, …).</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddSocketTransport(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddSocketTransport();
        services.AddValidatedOptions<SocketTransportOptions>(configuration, SocketTransportOptionsValidator.Schema, static (section, options) => section.Bind(options),
            new SocketTransportOptionsValidator((configuration as IConfigurationSection)?.Path ?? "", configuration));
        return services;
    }
}
