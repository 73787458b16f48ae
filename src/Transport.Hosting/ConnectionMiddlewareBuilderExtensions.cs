using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport.Hosting.Internal.Middleware;

namespace Transport.Hosting;

/// <summary>
/// Registers connection middleware by name on an <see cref="ITransportBuilder"/>; endpoints list the names in
/// <c>Transport:Endpoints:&lt;name&gt;:Middleware</c>.
/// </summary>
public static class ConnectionMiddlewareBuilderExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TMiddleware"/> under <paramref name="name"/>. Each element of an endpoint's
    /// <c>Middleware</c> list that names it gets its own <typeparamref name="TOptions"/>, filled by
    /// <paramref name="bind"/> from the element and checked by every <c>IValidateOptions&lt;TOptions&gt;</c> registered:
    /// a failure stops the host at start, naming the endpoint and the element. Registering the same name and type
    /// again does nothing.
    /// </summary>
    /// <remarks>
    /// <paramref name="bind"/> keeps the binding in your code, where the configuration binding source generator sees the
    /// concrete type: <c>static (section, options) =&gt; section.Bind(options)</c>. Mark the middleware type with
    /// <see cref="StreamTransportOnlyAttribute"/> when it needs a byte stream; the host then refuses it on <c>udp://</c>.
    /// </remarks>
    /// <typeparam name="TMiddleware">The middleware, created once from the service provider.</typeparam>
    /// <typeparam name="TOptions">Its options per element.</typeparam>
    /// <param name="builder">The transport builder.</param>
    /// <param name="name">The middleware's name, case-insensitive.</param>
    /// <param name="bind">Fills the options from the element's configuration (its <c>Name</c> key included).</param>
    /// <returns>The builder.</returns>
    /// <exception cref="InvalidOperationException">Other middleware is already registered under <paramref name="name"/>, or the name is built in.</exception>
    public static ITransportBuilder AddConnectionMiddleware<
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TMiddleware,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
        this ITransportBuilder builder, string name, Action<IConfiguration, TOptions> bind)
        where TMiddleware : class, IConnectionMiddleware<TOptions>
        where TOptions : class, new()
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(bind);
        if (Register(builder.Services, name, typeof(TMiddleware)))
        {
            builder.Services.TryAddSingleton<TMiddleware>();
            builder.Services.AddSingleton<ConnectionMiddlewareRegistration>(new TypedMiddlewareRegistration<TMiddleware, TOptions>(name, bind));
        }

        return builder;
    }

    /// <summary>
    /// Registers middleware without options under <paramref name="name"/>, as Kestrel's <c>IConnectionBuilder.Use</c>
    /// takes it: a function from the rest of the pipeline to this element's delegate.
    /// </summary>
    /// <param name="builder">The transport builder.</param>
    /// <param name="name">The middleware's name, case-insensitive.</param>
    /// <param name="middleware">Creates the delegate for one endpoint, given the rest of its pipeline.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="InvalidOperationException">Other middleware is already registered under <paramref name="name"/>, or the name is built in.</exception>
    public static ITransportBuilder AddConnectionMiddleware(this ITransportBuilder builder, string name, Func<ConnectionDelegate, ConnectionDelegate> middleware)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(middleware);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        // A delegate has no type of its own to tell registrations apart: a second one under the same name is an error.
        Register(builder.Services, name, typeof(DelegateMiddlewareRegistration));
        builder.Services.AddSingleton<ConnectionMiddlewareRegistration>(new DelegateMiddlewareRegistration(name, middleware));
        return builder;
    }

    /// <summary>False when <paramref name="type"/> is already registered under <paramref name="name"/>.</summary>
    private static bool Register(IServiceCollection services, string name, Type type)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (string.Equals(name, EndpointPipeline.TlsName, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Middleware name '{name}' is built in: configure TLS under Transport:Endpoints:<name>:Tls.");
        }

        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(ConnectionMiddlewareRegistration)
                && descriptor.ImplementationInstance is ConnectionMiddlewareRegistration existing
                && string.Equals(existing.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                if (existing.MiddlewareType == type && type != typeof(DelegateMiddlewareRegistration))
                {
                    return false;
                }

                throw new InvalidOperationException(
                    $"Connection middleware name '{name}' is already registered for {existing.MiddlewareType.FullName}; it cannot also name {type.FullName}.");
            }
        }

        return true;
    }
}
