namespace Transport.Hosting;

/// <summary>
/// Receiving the PROXY protocol (versions 1 and 2) on a stream endpoint (<c>Transport:Endpoints:&lt;name&gt;:ProxyProtocol</c>),
/// with server-wide defaults under <c>Transport:EndpointDefaults:ProxyProtocol</c>: a load balancer in front of the
/// server (HAProxy's <c>send-proxy</c> / <c>send-proxy-v2</c>, nginx's <c>proxy_protocol</c>, AWS NLB, Envoy) tells it
/// each client's real address. It runs first on each connection, before TLS. Each value the endpoint does not set
/// comes from the defaults, then from the built-in default.
/// </summary>
public sealed class TransportProxyProtocolOptions
{
    /// <summary>The default of <see cref="HeaderTimeout"/>: 5 seconds.</summary>
    public static readonly TimeSpan DefaultHeaderTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The default of <see cref="MaxHeaderBytes"/>: 4096.</summary>
    public const int DefaultMaxHeaderBytes = 4096;

    /// <summary>The smallest <see cref="MaxHeaderBytes"/>: a version 2 header with two Unix socket paths and no TLVs.</summary>
    public const int MinMaxHeaderBytes = 16 + 216;

    /// <summary>Whether connections must, may or do not begin with a header.</summary>
    /// <remarks>Defaults to <see cref="ProxyProtocolMode.Off"/>.</remarks>
    public ProxyProtocolMode? Mode { get; set; }

    /// <summary>
    /// The proxies whose headers are believed, as CIDR networks (<c>10.0.0.0/8</c>, <c>2001:db8::/32</c>) or single
    /// addresses (<c>127.0.0.1</c>), parsed as <see cref="System.Net.IPNetwork"/>. A header from any other address
    /// closes the connection (the specification forbids trusting unknown senders). Connections over a Unix socket or
    /// <c>memory://</c> are always trusted: who may connect there is decided by the socket file's permissions.
    /// </summary>
    /// <remarks>Defaults to none; an IP endpoint with a <see cref="Mode"/> other than <c>Off</c> needs at least one.</remarks>
    public List<string> TrustedProxies { get; } = [];

    /// <summary>How long a connection has to deliver its whole header before it is closed.</summary>
    /// <remarks>Defaults to 5 seconds.</remarks>
    public TimeSpan? HeaderTimeout { get; set; }

    /// <summary>
    /// The longest version 2 header accepted, its 16-byte fixed part and TLVs included (version 1 headers are at most
    /// 107 bytes by the specification); a longer one closes the connection as soon as its length field arrives.
    /// </summary>
    /// <remarks>Defaults to 4096; from 232 to 65,551.</remarks>
    public int? MaxHeaderBytes { get; set; }
}

/// <summary>Whether an endpoint's connections begin with a PROXY protocol header.</summary>
public enum ProxyProtocolMode
{
    /// <summary>No header is read: the bytes go to TLS or the protocol as they come.</summary>
    Off,

    /// <summary>
    /// A connection from a trusted proxy may begin with a header; one that does not (as its first bytes already tell) is
    /// served with its own addresses. A header from an untrusted address closes the connection.
    /// </summary>
    Optional,

    /// <summary>Every connection must begin with a header from a trusted proxy, or is closed.</summary>
    Required,
}
