using Microsoft.AspNetCore.Server.Kestrel.Core;
using Transport;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// Kestrel endpoints that only Transport can bind.
/// </summary>
public static class TransportKestrelServerOptionsExtensions
{
    /// <summary>
    /// Listens on <c>memory://<paramref name="name"/></c>: an in-process endpoint with no port and no socket, reached
    /// by a client from the same service provider (<c>Transport.AspNetCore.TransportHttpClientExtensions.CreateTransportHttpClient</c>).
    /// Needs <see cref="TransportWebHostBuilderExtensions.UseTransport"/>.
    /// </summary>
    /// <param name="options">Kestrel's options.</param>
    /// <param name="name">The endpoint's name, unique within the service provider.</param>
    /// <param name="configure">Optional configuration of the endpoint (protocols, connection middleware).</param>
    public static void ListenMemory(this KestrelServerOptions options, string name, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Listen(new MemoryEndPoint(name), configure ?? (static _ => { }));
    }
}
