using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.AspNetCore.Internal;

namespace Transport.AspNetCore;

/// <summary>
/// HTTP clients whose connections go through Transport's transports: to a <c>memory://</c> endpoint of the same
/// service provider (an in-process test of a real ASP.NET Core app, no port, no socket), or to a Unix socket.
/// </summary>
public static class TransportHttpClientExtensions
{
    /// <summary>
    /// Creates an <see cref="HttpClient"/> that opens every connection to <paramref name="url"/>, whatever the request
    /// URI's host. Its <see cref="HttpClient.BaseAddress"/> is <c>http://HOST:PORT/</c> for a <c>tcp://</c> URL and
    /// <c>http://localhost/</c> otherwise. HTTP/1.1 by default; for HTTP/2 with prior knowledge (h2c) set
    /// <see cref="HttpClient.DefaultRequestVersion"/> to 2.0 and <see cref="HttpClient.DefaultVersionPolicy"/> to
    /// <see cref="HttpVersionPolicy.RequestVersionExact"/>.
    /// </summary>
    /// <param name="services">
    /// The app's services (e.g. <c>WebApplication.Services</c>), where <c>UseTransport</c> registered the transports:
    /// a <c>memory://</c> listener is reached only from the service provider it was bound in.
    /// </param>
    /// <param name="url">Where to connect: <c>memory://name</c>, <c>unix:/path</c> or <c>tcp://HOST:PORT</c>.</param>
    /// <returns>The client; dispose it to close its connections.</returns>
    /// <exception cref="FormatException"><paramref name="url"/> is malformed.</exception>
    public static HttpClient CreateTransportHttpClient(this IServiceProvider services, string url)
    {
        EndPoint endpoint = TransportUrl.ParseConnectEndPoint(url);
        return new HttpClient(services.CreateTransportHttpHandler(url), disposeHandler: true)
        {
            BaseAddress = endpoint is IPEndPoint ip ? new Uri("http://" + ip + "/") : new Uri("http://localhost/"),
        };
    }

    /// <summary>
    /// Creates a <see cref="SocketsHttpHandler"/> that opens every connection to <paramref name="url"/> through the
    /// transport registered for it, for callers that set the handler's own options (pooling, HTTP/2 settings) or
    /// compose it with other handlers.
    /// </summary>
    /// <param name="services">The app's services, where the transports are registered.</param>
    /// <param name="url">Where to connect: <c>memory://name</c>, <c>unix:/path</c> or <c>tcp://HOST:PORT</c>.</param>
    /// <returns>The handler.</returns>
    /// <exception cref="FormatException"><paramref name="url"/> is malformed.</exception>
    /// <exception cref="InvalidOperationException">No registered transport connects to <paramref name="url"/>.</exception>
    public static SocketsHttpHandler CreateTransportHttpHandler(this IServiceProvider services, string url)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(url);
        EndPoint endpoint = TransportUrl.ParseConnectEndPoint(url);
        ITransportFactory transport = services.GetServices<ITransportFactory>().FirstOrDefault(t => t.CanConnect(endpoint))
            ?? throw new InvalidOperationException(
                $"No registered transport connects to {url}. Call UseTransport() on the web host builder of the app these services belong to.");
        ILogger logger = services.GetService<ILoggerFactory>()?.CreateLogger("Transport.AspNetCore") ?? NullLogger.Instance;
        return new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                ConnectionContext connection = await transport.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                return new ConnectionStream(connection, logger);
            },
        };
    }
}
