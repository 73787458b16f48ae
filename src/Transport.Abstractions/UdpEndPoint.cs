using System.Globalization;
using System.Net;

namespace Transport;

/// <summary>
/// The address of a UDP endpoint (<c>udp://host:port</c>). It wraps an <see cref="IPEndPoint"/> (or, for
/// clients, a <see cref="DnsEndPoint"/>) so the same address can be told apart from a TCP one.
/// </summary>
public sealed class UdpEndPoint : EndPoint, IEquatable<UdpEndPoint>
{
    /// <summary>Creates a UDP endpoint for an IP address and port, or a host name and port.</summary>
    /// <param name="address">An <see cref="IPEndPoint"/> or a <see cref="DnsEndPoint"/>.</param>
    public UdpEndPoint(EndPoint address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address is not (IPEndPoint or DnsEndPoint))
        {
            throw new ArgumentException("A UDP endpoint is an IPEndPoint or a DnsEndPoint.", nameof(address));
        }

        Address = address;
    }

    /// <summary>The IP address and port, or host name and port.</summary>
    public EndPoint Address { get; }

    /// <inheritdoc />
    public bool Equals(UdpEndPoint? other) => other is not null && Address.Equals(other.Address);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as UdpEndPoint);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(typeof(UdpEndPoint), Address);

    /// <inheritdoc />
    public override string ToString() => Address switch
    {
        DnsEndPoint dns => "udp://" + dns.Host + ":" + dns.Port.ToString(CultureInfo.InvariantCulture),
        _ => "udp://" + Address,
    };
}
