using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport;
using Transport.Hosting.Internal;
using Transport.Memory;
using Transport.Sockets;
using Transport.Udp;

namespace Transport.Hosting;

/// <summary>
/// Registers the Transport server and client in a service collection.
/// </summary>
public static class TransportServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Transport server (a hosted service that listens on every configured endpoint), the socket, UDP and
    /// memory transports, <see cref="IConnectionFactory"/> for clients, and the <see cref="ConnectionRegistry"/> (a
    /// singleton in which the server registers every connection it accepts). Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransport(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSocketTransport();
        services.AddMemoryTransport();
        services.AddUdpTransport();
        services.AddOptions<TransportServerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TransportServerOptions>, TransportServerOptionsValidator>());
        services.TryAddSingleton<TransportConnectionFactory>();
        services.TryAddSingleton<IConnectionFactory>(static sp => sp.GetRequiredService<TransportConnectionFactory>());
        services.AddOptions<ConnectionRegistryOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConnectionRegistryOptions>, ConnectionRegistryOptionsValidator>());
        services.TryAddSingleton(static sp => new ConnectionRegistry(
            sp.GetRequiredService<IOptions<ConnectionRegistryOptions>>().Value,
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            sp.GetService<Microsoft.Extensions.Logging.ILogger<ConnectionRegistry>>()));
        services.TryAddSingleton<TransportServer>();
        services.TryAddSingleton<ITransportServer>(static sp => sp.GetRequiredService<TransportServer>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, TransportServer>(static sp => sp.GetRequiredService<TransportServer>()));
        services.TryAddSingleton(new TransportConfigurationPath("Transport"));
        return new TransportBuilder(services);
    }

    /// <summary>
    /// Adds the Transport server and binds its options to <paramref name="configuration"/> (e.g. the
    /// <c>Transport</c> section): endpoints under <c>Endpoints:&lt;name&gt;</c> with <c>Url</c> and <c>Protocol</c>,
    /// limits under <c>Limits</c>, the connection registry's outbox options under <c>Registry</c>. Values are validated
    /// when the host starts.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The configuration section.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransport(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ITransportBuilder builder = services.AddTransport();
        services.Configure<TransportServerOptions>(configuration);
        services.Configure<ConnectionRegistryOptions>(configuration.GetSection("Registry"));
        if (configuration is IConfigurationSection section)
        {
            services.Replace(ServiceDescriptor.Singleton(new TransportConfigurationPath(section.Path)));
        }

        return builder;
    }

    /// <summary>
    /// Adds the Transport server and configures its options in code.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransport(this IServiceCollection services, Action<TransportServerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        ITransportBuilder builder = services.AddTransport();
        services.Configure(configure);
        return builder;
    }

    private sealed class TransportBuilder(IServiceCollection services) : ITransportBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
