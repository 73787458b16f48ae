using System.Net;

namespace Transport.Internal;

/// <summary>
/// What a datagram endpoint with <c>ProxyProtocol</c> does with the version 2 header at the start of each datagram (the
/// engine resolves it from the endpoint's options; the UDP transport applies it per datagram, before the session lookup).
/// </summary>
/// <param name="required">Whether a datagram without a header from a trusted proxy is dropped (Required) or served as the sender's (Optional).</param>
/// <param name="isTrusted">Whether a header from this sender is believed (asked once per new sender address).</param>
internal sealed class DatagramProxyProtocol(bool required, Func<EndPoint, bool> isTrusted)
{
    public bool Required { get; } = required;

    public bool IsTrusted(EndPoint sender) => isTrusted(sender);
}
