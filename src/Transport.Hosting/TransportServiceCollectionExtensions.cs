using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal;
using Transport.Hosting.Internal.Middleware;
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
    /// <remarks>
    /// A transport registered by the application as an <see cref="ITransportFactory"/> serves the endpoints it can bind
    /// before any built-in one, whether it was registered before or after this call. To leave a built-in transport out,
    /// use <see cref="AddTransportCore(IServiceCollection)"/> and add the transports you want.
    /// </remarks>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransport(this IServiceCollection services)
    {
        ITransportBuilder builder = services.AddTransportCore();
        services.AddSocketTransport();
        services.AddMemoryTransport();
        services.AddUdpTransport();
        return builder;
    }

    /// <summary>
    /// Adds the Transport server, the built-in transports and the client as <see cref="AddTransport(IServiceCollection)"/>
    /// does, all bound to <paramref name="configuration"/> (e.g. the <c>Transport</c> section): endpoints under
    /// <c>Endpoints:&lt;name&gt;</c> with <c>Url</c> and <c>Protocol</c>, limits under <c>Limits</c>, the connection
    /// registry under <c>Registry</c>, the socket transport under <c>Sockets</c>, UDP under <c>Udp</c>. Every value is
    /// checked when the host starts: a bad value or one of the wrong type fails the start with one message naming its
    /// full key, and a key no option has is reported as <see cref="TransportServerOptions.UnknownKeys"/> says.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The configuration section.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransport(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ITransportBuilder builder = services.AddTransportCore(configuration);
        services.AddSocketTransport(configuration.GetSection("Sockets"));
        services.AddMemoryTransport();
        services.AddUdpTransport(configuration.GetSection("Udp"));
        return builder;
    }

    /// <summary>
    /// Adds the Transport server and configures its options in code, with the built-in transports.
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

    /// <summary>
    /// Adds the Transport server, the client and the connection registry without any transport: the host adds the ones
    /// it wants (<c>AddSocketTransport</c>, <c>AddUdpTransport</c>, <c>AddMemoryTransport</c>, or its own
    /// <see cref="ITransportFactory"/>). Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransportCore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<TransportServerOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TransportServerOptions>, TransportServerOptionsValidator>());
        services.TryAddSingleton<TransportFactories>();
        services.TryAddSingleton(static sp => new TransportConnectionFactory(sp.GetRequiredService<TransportFactories>().All));
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
        // sd_notify (READY, STATUS, STOPPING, EXTEND_TIMEOUT_USEC, WATCHDOG): does nothing unless NOTIFY_SOCKET is set.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, Internal.Systemd.SystemdNotifier>());
        services.TryAddSingleton(new TransportConfigurationPath("Transport"));
        var builder = new TransportBuilder(services);
        builder.AddConnectionMiddleware<LoggingConnectionMiddleware, ConnectionLoggingOptions>(LoggingConnectionMiddleware.Name, ConnectionLoggingOptions.Bind);
        return builder;
    }

    /// <summary>
    /// Adds the Transport server, the client and the connection registry without any transport, bound to
    /// <paramref name="configuration"/> (endpoints, limits and <c>Registry</c>; see
    /// <see cref="AddTransport(IServiceCollection, IConfiguration)"/>). Transports added with their own
    /// <c>IConfiguration</c> overload on a subsection (e.g. <c>AddSocketTransport(configuration.GetSection("Sockets"))</c>)
    /// have their keys known to the unknown-key check.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The configuration section.</param>
    /// <returns>A builder to register protocols and endpoints.</returns>
    public static ITransportBuilder AddTransportCore(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ITransportBuilder builder = services.AddTransportCore();
        IConfiguration registry = configuration.GetSection("Registry");
        // Binding a value of the wrong type would throw the binder's exception; the validators report it instead.
        services.Configure<TransportServerOptions>(options =>
        {
            if (TransportServerOptionsValidator.Schema.CheckValues(configuration).Count == 0)
            {
                configuration.Bind(options);
            }
        });
        services.Configure<ConnectionRegistryOptions>(options =>
        {
            if (ConnectionRegistryOptionsValidator.Schema.CheckValues(registry).Count == 0)
            {
                registry.Bind(options);
            }
        });
        services.Replace(ServiceDescriptor.Singleton(new TransportConfigurationPath(
            (configuration as IConfigurationSection)?.Path ?? "", configuration)));
        return builder;
    }

    private sealed class TransportBuilder(IServiceCollection services) : ITransportBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
