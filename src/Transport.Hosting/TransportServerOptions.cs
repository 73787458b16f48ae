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

    /// <summary>
    /// What a key under <c>Transport</c> that no option has (a typo such as <c>Endpionts</c>) does at start: a Warning
    /// naming it and the closest known key, an error that fails the start, or nothing (<c>Transport:UnknownKeys</c>).
    /// </summary>
    /// <remarks>Defaults to <see cref="UnknownKeyHandling.Warn"/>.</remarks>
    public UnknownKeyHandling UnknownKeys { get; set; } = UnknownKeyHandling.Warn;
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
    /// picks a free port), <c>unix:/absolute/path</c> or <c>memory://name</c>.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>The name of a protocol registered with <c>AddProtocol</c>.</summary>
    public string? Protocol { get; set; }

    /// <summary>Limits for this endpoint; each one not set here comes from <see cref="TransportServerOptions.Limits"/>.</summary>
    public TransportLimits Limits { get; set; } = new();
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
}
