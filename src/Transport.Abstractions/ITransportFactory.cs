using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Transport;

/// <summary>
/// A transport: binds listeners for, and connects to, the endpoint types it supports. Server and client
/// sides hand out the same <see cref="ConnectionContext"/> type, so a protocol runs unchanged on either.
/// </summary>
public interface ITransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IConnectionFactory
{
    /// <summary>The URL scheme of this transport, e.g. <c>tcp</c>; used in messages.</summary>
    string Name { get; }

    /// <summary>Whether <see cref="IConnectionFactory.ConnectAsync"/> supports <paramref name="endpoint"/>.</summary>
    /// <param name="endpoint">The endpoint to connect to.</param>
    bool CanConnect(EndPoint endpoint);

    /// <summary>Binds a listener to <paramref name="endpoint"/> with the given per-listener limits.</summary>
    /// <param name="endpoint">The endpoint to listen on.</param>
    /// <param name="options">Limits for the listener's connections.</param>
    /// <param name="cancellationToken">Cancels the bind.</param>
    /// <returns>The bound listener; its <see cref="IConnectionListener.EndPoint"/> is the real address (port 0 resolved).</returns>
    /// <exception cref="AddressInUseException">Another listener owns the address.</exception>
    ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, TransportListenOptions options, CancellationToken cancellationToken = default);
}
