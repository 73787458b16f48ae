using System.Globalization;
using System.Net;

namespace Transport.Hosting.Internal.ProxyProtocol;

/// <summary>An endpoint's PROXY protocol options with the server-wide defaults filled in, checked, and the keys to name in messages.</summary>
internal sealed class ProxyProtocolSettings
{
    private ProxyProtocolSettings(ProxyProtocolMode mode, IPNetwork[] trusted, TimeSpan headerTimeout, int maxHeaderBytes)
    {
        Mode = mode;
        TrustedProxies = trusted;
        HeaderTimeout = headerTimeout;
        MaxHeaderBytes = maxHeaderBytes;
    }

    public ProxyProtocolMode Mode { get; }

    public IReadOnlyList<IPNetwork> TrustedProxies { get; }

    public TimeSpan HeaderTimeout { get; }

    public int MaxHeaderBytes { get; }

    /// <summary>
    /// The endpoint's settings, or null when it reads no header; a bad value adds one line naming its key to
    /// <paramref name="failures"/> (and the settings are null).
    /// </summary>
    public static ProxyProtocolSettings? Resolve(TransportEndpointOptions endpoint, TransportEndpointDefaults defaults, string endpointKey, string root, List<string> failures)
    {
        TransportProxyProtocolOptions own = endpoint.ProxyProtocol ?? new TransportProxyProtocolOptions();
        TransportProxyProtocolOptions fallback = defaults.ProxyProtocol;
        string ownKey = endpointKey + ":ProxyProtocol";
        string defaultsKey = root + ":EndpointDefaults:ProxyProtocol";
        ProxyProtocolMode mode = own.Mode ?? fallback.Mode ?? ProxyProtocolMode.Off;
        if (mode == ProxyProtocolMode.Off)
        {
            return null;
        }

        int before = failures.Count;
        bool ownList = own.TrustedProxies.Count > 0;
        string listKey = (ownList ? ownKey : defaultsKey) + ":TrustedProxies";
        List<string> list = ownList ? own.TrustedProxies : fallback.TrustedProxies;
        var trusted = new IPNetwork[list.Count];
        for (int i = 0; i < list.Count; i++)
        {
            if (!TryParseNetwork(list[i], out trusted[i]))
            {
                failures.Add($"{listKey}:{i.ToString(CultureInfo.InvariantCulture)} '{list[i]}' is not an IP network in CIDR notation with no bits set after the prefix (10.0.0.0/8, 2001:db8::/32) or an IP address (127.0.0.1).");
            }
        }

        string modeKey = (own.Mode is null ? defaultsKey : ownKey) + ":Mode";
        string url = endpoint.Url?.Trim() ?? "";
        if (list.Count == 0 && (url.StartsWith("tcp:", StringComparison.OrdinalIgnoreCase) || url.StartsWith("udp:", StringComparison.OrdinalIgnoreCase)))
        {
            failures.Add($"{modeKey} is '{mode}' but {ownKey}:TrustedProxies is empty: no header could be believed. List the proxies' addresses (CIDR, e.g. 10.0.0.0/8).");
        }

        TimeSpan timeout = own.HeaderTimeout ?? fallback.HeaderTimeout ?? TransportProxyProtocolOptions.DefaultHeaderTimeout;
        if (timeout <= TimeSpan.Zero)
        {
            failures.Add($"{(own.HeaderTimeout is null ? defaultsKey : ownKey)}:HeaderTimeout must be positive (was {timeout}).");
        }

        int max = own.MaxHeaderBytes ?? fallback.MaxHeaderBytes ?? TransportProxyProtocolOptions.DefaultMaxHeaderBytes;
        if (max is < TransportProxyProtocolOptions.MinMaxHeaderBytes or > ProxyProtocolHeader.MaxV2Length)
        {
            failures.Add($"{(own.MaxHeaderBytes is null ? defaultsKey : ownKey)}:MaxHeaderBytes must be from {TransportProxyProtocolOptions.MinMaxHeaderBytes.ToString(CultureInfo.InvariantCulture)} to {ProxyProtocolHeader.MaxV2Length.ToString(CultureInfo.InvariantCulture)} (was {max.ToString(CultureInfo.InvariantCulture)}).");
        }

        return failures.Count == before ? new ProxyProtocolSettings(mode, trusted, timeout, max) : null;
    }

    /// <summary>The policy the UDP transport applies per datagram (a version 2 header at the start of each).</summary>
    public Transport.Internal.DatagramProxyProtocol ForDatagrams() => new(Mode == ProxyProtocolMode.Required, IsTrusted);

    /// <summary>Whether a header from <paramref name="remote"/> is believed: an address in a trusted network, or a Unix socket or in-memory peer.</summary>
    public bool IsTrusted(EndPoint? remote)
    {
        if (remote is not IPEndPoint ip)
        {
            return true;
        }

        IPAddress address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
        foreach (IPNetwork network in TrustedProxies)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            network = default;
            return false;
        }
        network = default;
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (!IPAddress.TryParse(slash < 0 ? text : text[..slash], out IPAddress? address))
        {
            return false;
        }

        int bits = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        int prefix = bits;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits))
        {
            return false;
        }

        // Refuses an address with bits set after the prefix (10.0.0.1/8): a typo for a host or for a network.
        byte[] bytes = address.GetAddressBytes();
        for (int bit = prefix; bit < bits; bit++)
        {
            if ((bytes[bit / 8] & (0x80 >> (bit % 8))) != 0)
            {
                return false;
            }
        }

        network = new IPNetwork(address, prefix);
        return true;
    }
}
