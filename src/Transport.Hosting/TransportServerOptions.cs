using Microsoft.Extensions.Configuration;

namespace Transport.Hosting;

/// <summary>
/// The server's configuration, usually bound from the <c>Transport</c> section of appsettings.json:
/// the endpoints to listen on and the limits that apply to all of them.
/// </summary>
public sealed class TransportServerOptions
{
    /// <summary>The endpoints, by name (<c>Transport:Endpoints:&lt;name&gt;</c>). Names are case-insensitive.</summary>
    public Dictionary<string, TransportEndpointOptions> Endpoints { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Limits for every endpoint that does not set its own (<c>Transport:Limits</c>).</summary>
    public TransportLimits Limits { get; set; } = new();

    /// <summary>Tracing options (<c>Transport:Telemetry</c>); metrics need no switch, they cost nothing until listened to.</summary>
    public TransportTelemetryOptions Telemetry { get; set; } = new();

    /// <summary>
    /// What a key under <c>Transport</c> that no option has (a typo such as <c>Endpionts</c>) does at start: a Warning
    /// naming it and the closest known key, an error that fails the start, or nothing (<c>Transport:UnknownKeys</c>).
    /// </summary>
    /// <remarks>Defaults to <see cref="UnknownKeyHandling.Warn"/>.</remarks>
    public UnknownKeyHandling UnknownKeys { get; set; } = UnknownKeyHandling.Warn;

    /// <summary>Values for every endpoint that does not set its own (<c>Transport:EndpointDefaults</c>).</summary>
    public TransportEndpointDefaults EndpointDefaults { get; set; } = new();

    /// <summary>
    /// How long stopping first reports drain (the <c>haproxy-agent</c> protocol answers <c>drain</c>) while every endpoint
    /// still accepts, so that a load balancer's checks notice and stop sending new connections, before the endpoints stop
    /// accepting and open connections drain (<c>Transport:DrainDelay</c>). Make it longer than the balancer's check
    /// interval; the host's <c>HostOptions.ShutdownTimeout</c> must cover it plus the longest
    /// <see cref="TransportLimits.ShutdownTimeout"/>.
    /// </summary>
    /// <remarks>Defaults to none: stopping unbinds at once.</remarks>
    public TimeSpan? DrainDelay { get; set; }
}

/// <summary>Server-wide defaults for endpoints (<c>Transport:EndpointDefaults</c>).</summary>
public sealed class TransportEndpointDefaults
{
    /// <summary>
    /// TLS values for every endpoint that has a <c>Tls</c> section and does not set them itself: typically the
    /// certificate shared by all secure endpoints. Setting them here does not turn TLS on for any endpoint.
    /// </summary>
    public TransportTlsOptions Tls { get; set; } = new();

    /// <summary>PROXY protocol values for every endpoint that does not set them itself; a <c>Mode</c> here applies to every endpoint.</summary>
    public TransportProxyProtocolOptions ProxyProtocol { get; set; } = new();

    /// <summary>
    /// <see cref="TransportEndpointOptions.ReusePort"/> for every <c>tcp://</c> and <c>udp://</c> endpoint that does not
    /// set it itself (Unix, memory and inherited endpoints have no port to share and are left alone).
    /// </summary>
    /// <remarks>Defaults to false.</remarks>
    public bool? ReusePort { get; set; }
}

/// <summary>What the host does at start with a configuration key under <c>Transport</c> that no option has.</summary>
public enum UnknownKeyHandling
{
    /// <summary>Logs a Warning naming the key and the closest known one.</summary>
    Warn,

    /// <summary>Fails the start with that message.</summary>
    Error,

    /// <summary>Says nothing.</summary>
    Ignore,
}

/// <summary>
/// One endpoint: where to listen and which protocol serves its connections.
/// </summary>
public sealed class TransportEndpointOptions
{
    /// <summary>
    /// Where to listen: <c>tcp://HOST:PORT</c> (an IP address, <c>[IPv6]</c>, <c>localhost</c> or <c>*</c>; port 0
    /// picks a free port), <c>udp://HOST:PORT</c>, <c>unix:/absolute/path</c> or <c>memory://name</c>; or a socket
    /// inherited from the process that started this one: <c>systemd:NAME</c> (the socket unit's <c>FileDescriptorName=</c>)
    /// or <c>fd:N</c>.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>
    /// Sets <c>SO_REUSEPORT</c> before binding, so that several processes can listen on the same <c>tcp://</c> or
    /// <c>udp://</c> address and the kernel spreads new connections (and UDP peers) among them. Linux only.
    /// </summary>
    /// <remarks>Defaults to <see cref="TransportEndpointDefaults.ReusePort"/>, else false.</remarks>
    public bool? ReusePort { get; set; }

    /// <summary>The name of a protocol registered with <c>AddProtocol</c>.</summary>
    public string? Protocol { get; set; }

    /// <summary>
    /// On a TLS endpoint, the protocol per ALPN name (<c>"Protocols": { "redis": "kv", "echo/1": "echo" }</c>): the server
    /// offers these names, and a client that negotiates one is served by that protocol; a client that sends no ALPN, or
    /// negotiates a name not listed here, by <see cref="Protocol"/>. One port, several protocols.
    /// </summary>
    /// <remarks>Defaults to none: every connection is served by <see cref="Protocol"/>.</remarks>
    public Dictionary<string, string> Protocols { get; } = new(StringComparer.Ordinal);

    /// <summary>Limits for this endpoint; each one not set here comes from <see cref="TransportServerOptions.Limits"/>.</summary>
    public TransportLimits Limits { get; set; } = new();

    /// <summary>TLS on this endpoint (tcp, unix and memory only); <see langword="null"/> for none.</summary>
    public TransportTlsOptions? Tls { get; set; }

    /// <summary>Receiving the PROXY protocol on this endpoint (tcp, unix and memory); <see langword="null"/> for the defaults' (off unless set there).</summary>
    public TransportProxyProtocolOptions? ProxyProtocol { get; set; }

    /// <summary>
    /// The connection middleware that runs between the transport (and TLS) and the protocol, in order. In
    /// configuration each element is a name registered with <c>AddConnectionMiddleware</c> (<c>"logging"</c>) or an
    /// object with <c>Name</c> and the middleware's options (<c>{ "Name": "my-middleware", "SomeOption": 1 }</c>);
    /// in code, add elements with <see cref="AddMiddleware"/>.
    /// </summary>
    public List<IConfigurationSection> Middleware { get; } = [];

    /// <summary>Appends middleware <paramref name="name"/> to <see cref="Middleware"/>, with optional options as configuration keys.</summary>
    /// <param name="name">A name registered with <c>AddConnectionMiddleware</c>.</param>
    /// <param name="options">The middleware's options, e.g. <c>{ ["SomeOption"] = "1" }</c>.</param>
    /// <returns>These options.</returns>
    public TransportEndpointOptions AddMiddleware(string name, IEnumerable<KeyValuePair<string, string?>>? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        string index = Middleware.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var values = new List<KeyValuePair<string, string?>> { new($"Middleware:{index}:Name", name) };
        foreach ((string key, string? value) in options ?? [])
        {
            values.Add(new($"Middleware:{index}:{key}", value));
        }

        Middleware.Add(new ConfigurationBuilder().AddInMemoryCollection(values).Build().GetSection($"Middleware:{index}"));
        return this;
    }
}

/// <summary>
/// Connection limits. On an endpoint, a limit left unset falls back to the server-wide value, then to the default.
/// </summary>
public sealed class TransportLimits
{
    /// <summary>The default of <see cref="ShutdownTimeout"/>: 10 seconds.</summary>
    public static readonly TimeSpan DefaultShutdownTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most connections an endpoint serves at once; further connections are closed as soon as they are
    /// accepted, counted and logged.
    /// </summary>
    /// <remarks>Defaults to no limit.</remarks>
    public long? MaxConcurrentConnections { get; set; }

    /// <summary>
    /// How long stopping the host waits for open connections to finish before it aborts them.
    /// </summary>
    /// <remarks>Defaults to 10 seconds. Keep it below the host's own <c>HostOptions.ShutdownTimeout</c> (30 s by default).</remarks>
    public TimeSpan? ShutdownTimeout { get; set; }

    /// <summary>
    /// The most bytes received and not yet read by the protocol, per connection; reading from the peer pauses there.
    /// </summary>
    /// <remarks>Defaults to 1 MiB. 0 means no limit.</remarks>
    public long? MaxReadBufferSize { get; set; }

    /// <summary>
    /// The most bytes written by the protocol and not yet sent, per connection; the protocol's flush waits there.
    /// </summary>
    /// <remarks>Defaults to 64 KiB. 0 means no limit.</remarks>
    public long? MaxWriteBufferSize { get; set; }

    /// <summary>The grace period between asking an idle connection to close and aborting it: 5 seconds.</summary>
    public static readonly TimeSpan IdleCloseGracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a connection may go without a byte in either direction (a read that returns data, or a completed flush)
    /// before it is asked to close (<c>IConnectionLifetimeNotificationFeature.RequestClose</c>), then aborted
    /// <see cref="IdleCloseGracePeriod"/> later if it is still open. Works for any protocol, including those that keep
    /// no timeouts of their own.
    /// </summary>
    /// <remarks>Defaults to none. <c>00:00:00</c> also means none.</remarks>
    public TimeSpan? IdleTimeout { get; set; }

    /// <summary>
    /// How long a connection may stay open, busy or not, before it is asked to close
    /// (<c>IConnectionLifetimeNotificationFeature.RequestClose</c>), then aborted <see cref="IdleCloseGracePeriod"/> later
    /// if it is still open: so that long-lived clients reconnect now and then, e.g. to spread over new instances behind
    /// a load balancer or to pick up a rotated certificate.
    /// </summary>
    /// <remarks>Defaults to none. <c>00:00:00</c> also means none.</remarks>
    public TimeSpan? MaxConnectionLifetime { get; set; }
}
