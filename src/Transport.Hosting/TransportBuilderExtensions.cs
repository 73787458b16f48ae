using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Transport.Hosting.Internal;

namespace Transport.Hosting;

/// <summary>
/// Registers protocols and endpoints on an <see cref="ITransportBuilder"/>.
/// </summary>
public static class TransportBuilderExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TProtocol"/> under <paramref name="name"/>, the value endpoints give as
    /// their <c>Protocol</c>. One instance serves every endpoint that names it, created from the service
    /// provider (constructor injection works). Registering the same name and type again does nothing.
    /// </summary>
    /// <remarks>
    /// An exception from the protocol's <see cref="ConnectionHandler.OnConnectedAsync"/> ends only that connection.
    /// A <see cref="System.Net.ProtocolViolationException"/> (or a type derived from it, like the framing toolkit's
    /// <c>InvalidFrameException</c>) says the client broke the protocol: it is logged at Debug with its message and
    /// no stack trace, counted in <c>transport.connections.invalid_input</c>, and is not an error; throw it (after
    /// writing any last reply) for a client's bad input. A reset or abort by the peer is logged at Debug; anything
    /// else is a fault in the server's code, logged at Error with the exception and counted in
    /// <c>transport.protocol.errors</c>.
    /// </remarks>
    /// <typeparam name="TProtocol">The protocol: a <see cref="ConnectionHandler"/>.</typeparam>
    /// <param name="builder">The transport builder.</param>
    /// <param name="name">The protocol's name, case-insensitive.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="InvalidOperationException">Another type is already registered under <paramref name="name"/>.</exception>
    public static ITransportBuilder AddProtocol<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TProtocol>(
        this ITransportBuilder builder, string name)
        where TProtocol : ConnectionHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        foreach (ServiceDescriptor descriptor in builder.Services)
        {
            if (descriptor.ServiceType == typeof(ProtocolRegistration)
                && descriptor.ImplementationInstance is ProtocolRegistration existing
                && string.Equals(existing.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                if (existing.HandlerType == typeof(TProtocol))
                {
                    return builder;
                }

                throw new InvalidOperationException(
                    $"Protocol name '{name}' is already registered for {existing.HandlerType.FullName}; it cannot also name {typeof(TProtocol).FullName}.");
            }
        }

        builder.Services.TryAddSingleton<TProtocol>();
        builder.Services.AddSingleton(new ProtocolRegistration(name, typeof(TProtocol)));
        return builder;
    }

    /// <summary>
    /// Adds an endpoint in code, named by its URL (with <c>#2</c>, <c>#3</c>… appended when that name is taken, as by
    /// two <c>tcp://127.0.0.1:0</c> endpoints): the same as a <c>Transport:Endpoints</c> entry in configuration.
    /// </summary>
    /// <param name="builder">The transport builder.</param>
    /// <param name="url">Where to listen, e.g. <c>tcp://127.0.0.1:7007</c>.</param>
    /// <param name="protocol">The name of a registered protocol.</param>
    /// <param name="configureLimits">Optional limits for this endpoint.</param>
    /// <returns>The builder.</returns>
    public static ITransportBuilder Listen(this ITransportBuilder builder, string url, string protocol, Action<TransportLimits>? configureLimits = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(url);
        ArgumentException.ThrowIfNullOrWhiteSpace(protocol);
        builder.Services.Configure<TransportServerOptions>(options =>
        {
            var endpoint = new TransportEndpointOptions { Url = url, Protocol = protocol };
            configureLimits?.Invoke(endpoint.Limits);
            string name = url;
            for (int n = 2; options.Endpoints.ContainsKey(name); n++)
            {
                name = url + "#" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            options.Endpoints[name] = endpoint;
        });
        return builder;
    }
}
