using System.Net;

namespace Transport.Hosting;

/// <summary>
/// The running server: what it is bound to. Resolve it from the service provider after the host has started,
/// e.g. to find the port picked for <c>tcp://127.0.0.1:0</c>.
/// </summary>
public interface ITransportServer
{
    /// <summary>Every bound address, in endpoint-name order; empty until the host has started.</summary>
    IReadOnlyList<TransportBinding> Bindings { get; }
}

/// <summary>One bound address of an endpoint.</summary>
/// <param name="Name">The endpoint's name in configuration.</param>
/// <param name="Protocol">The protocol serving it.</param>
/// <param name="EndPoint">The real bound address (port 0 resolved).</param>
public sealed record TransportBinding(string Name, string Protocol, EndPoint EndPoint)
{
    /// <summary>The bound address as a URL, e.g. <c>tcp://127.0.0.1:40123</c>.</summary>
    public string Url => TransportUrl.Format(EndPoint);
}
