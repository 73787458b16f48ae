using Microsoft.AspNetCore.Connections;

namespace Transport.Hosting;

/// <summary>
/// Connection middleware registered by name with <c>AddConnectionMiddleware</c>: behaviour between the transport
/// (and TLS) and the protocol, such as logging, limits or a handshake of your own. One instance, from the service
/// provider, serves every endpoint that lists it; <see cref="Create"/> is called once per endpoint and element, at start.
/// </summary>
/// <typeparam name="TOptions">The options of one element of an endpoint's <c>Middleware</c> list.</typeparam>
public interface IConnectionMiddleware<in TOptions>
    where TOptions : class
{
    /// <summary>
    /// Returns the delegate that runs for each connection: it does its work and calls <paramref name="pipeline"/> (the rest
    /// of the pipeline, ending with the protocol), or returns without calling it to end the connection. It may replace
    /// <see cref="ConnectionContext.Transport"/> for what follows (restore it when <paramref name="pipeline"/> returns) and
    /// add features.
    /// </summary>
    /// <param name="pipeline">The rest of the pipeline.</param>
    /// <param name="options">This element's options, bound from its configuration and validated.</param>
    /// <param name="context">The endpoint the pipeline is built for.</param>
    /// <returns>The middleware's delegate.</returns>
    ConnectionDelegate Create(ConnectionDelegate pipeline, TOptions options, ConnectionMiddlewareContext context);
}

/// <summary>The endpoint a connection pipeline is built for.</summary>
public sealed class ConnectionMiddlewareContext
{
    internal ConnectionMiddlewareContext(string endpointName, string url, IServiceProvider services)
    {
        EndpointName = endpointName;
        Url = url;
        Services = services;
    }

    /// <summary>The endpoint's name (<c>Transport:Endpoints:&lt;name&gt;</c>).</summary>
    public string EndpointName { get; }

    /// <summary>The endpoint's configured URL.</summary>
    public string Url { get; }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services { get; }
}
