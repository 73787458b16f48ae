using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Transport.Hosting;

/// <summary>
/// The client side: connects to any endpoint a registered transport supports, returning the same connection
/// type the server side hands to protocols. Registered by <c>AddTransport</c> as <see cref="IConnectionFactory"/>.
/// </summary>
public sealed class TransportConnectionFactory : IConnectionFactory
{
    private readonly ITransportFactory[] _transports;

    /// <summary>Creates the factory over the registered transports.</summary>
    /// <param name="transports">The transports, tried in registration order.</param>
    public TransportConnectionFactory(IEnumerable<ITransportFactory> transports)
    {
        ArgumentNullException.ThrowIfNull(transports);
        _transports = [.. transports];
    }

    /// <inheritdoc />
    public ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        foreach (ITransportFactory transport in _transports)
        {
            if (transport.CanConnect(endpoint))
            {
                return transport.ConnectAsync(endpoint, cancellationToken);
            }
        }

        throw new NotSupportedException($"No registered transport can connect to {TransportUrl.Format(endpoint)}.");
    }

    /// <summary>Connects to a URL such as <c>tcp://127.0.0.1:7007</c>, <c>unix:/run/app.sock</c> or <c>memory://echo</c>.</summary>
    /// <param name="url">The URL.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="FormatException">The URL is malformed.</exception>
    /// <exception cref="ConnectionRefusedException">Nothing accepted the connection.</exception>
    public ValueTask<ConnectionContext> ConnectAsync(string url, CancellationToken cancellationToken = default) =>
        ConnectAsync(TransportUrl.ParseConnectEndPoint(url), cancellationToken);
}
