using Transport.Internal;

namespace Transport.Hosting.Internal;

/// <summary>
/// The registered transports in the order the engine tries them: the application's own first, then the built-in ones,
/// each group in registration order. So a user's factory for <c>tcp://</c> wins whether it was registered before or
/// after <c>AddTransport</c>.
/// </summary>
internal sealed class TransportFactories(IEnumerable<ITransportFactory> transports)
{
    public ITransportFactory[] All { get; } = [.. transports.Where(t => t is not IBuiltInTransport), .. transports.Where(t => t is IBuiltInTransport)];

    /// <summary>The transport that binds <paramref name="endpoint"/>, or null when none can.</summary>
    public ITransportFactory? ForBind(System.Net.EndPoint endpoint) => Array.Find(All, t => t.CanBind(endpoint));
}
