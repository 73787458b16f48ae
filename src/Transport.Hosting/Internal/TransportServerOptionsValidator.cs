using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal.Middleware;

namespace Transport.Hosting.Internal;

/// <summary>
/// Checks the whole configuration when the host starts, so a bad value fails before the first byte, with a
/// message that names the key, the value, and what is accepted.
/// </summary>
internal sealed class TransportServerOptionsValidator(
    IEnumerable<ProtocolRegistration> protocols,
    TransportFactories transports,
    IEnumerable<ConnectionMiddlewareRegistration> middleware,
    IServiceProvider services,
    TransportConfigurationPath path,
    IEnumerable<ConfigurationSectionSchema> sections,
    ILoggerFactory? loggerFactory = null) : IValidateOptions<TransportServerOptions>
{
    private static readonly ConfigurationSchema s_limits = new ConfigurationSchema()
        .WholeNumber(nameof(TransportLimits.MaxConcurrentConnections), is64Bit: true)
        .Duration(nameof(TransportLimits.ShutdownTimeout))
        .WholeNumber(nameof(TransportLimits.MaxReadBufferSize), is64Bit: true)
        .WholeNumber(nameof(TransportLimits.MaxWriteBufferSize), is64Bit: true)
        .Duration(nameof(TransportLimits.IdleTimeout))
        .Duration(nameof(TransportLimits.MaxConnectionLifetime));

    /// <summary>The server's own keys under <c>Transport</c>.</summary>
    public static readonly ConfigurationSchema Schema = ServerKeys();

    private readonly ILogger _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Transport.Hosting");
    private int _warned;

    public ValidateOptionsResult Validate(string? name, TransportServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        string root = path.Path;
        if (path.Section is { } section)
        {
            failures.AddRange(Schema.CheckValues(section));
            CheckUnknownKeys(section, options.UnknownKeys, failures);
        }

        ValidateLimits($"{root}:Limits", options.Limits, failures);
        ValidateReusePort($"{root}:EndpointDefaults:{nameof(TransportEndpointDefaults.ReusePort)}", options.EndpointDefaults.ReusePort, null, failures);
        if (options.DrainDelay is { } drainDelay && drainDelay < TimeSpan.Zero)
        {
            failures.Add($"{root}:DrainDelay must not be negative (was {drainDelay}); 00:00:00 or unset means none.");
        }

        string registered = string.Join(", ", protocols.Select(p => p.Name).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase));
        if (registered.Length == 0)
        {
            registered = "(none: register one with AddProtocol)";
        }

        var owners = new Dictionary<EndPoint, string>();
        foreach ((string key, TransportEndpointOptions endpoint) in options.Endpoints.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase))
        {
            string prefix = $"{root}:Endpoints:{key}";
            ValidateUrl(prefix, key, endpoint.Url, owners, failures);
            ValidateReusePort($"{prefix}:{nameof(TransportEndpointOptions.ReusePort)}", endpoint.ReusePort, endpoint.Url, failures);

            ProtocolRegistration? protocol = protocols.FirstOrDefault(p => string.Equals(p.Name, endpoint.Protocol, StringComparison.OrdinalIgnoreCase));
            if (string.IsNullOrWhiteSpace(endpoint.Protocol))
            {
                failures.Add($"{prefix}:Protocol is missing. Registered protocols: {registered}.");
            }
            else if (protocol is null)
            {
                failures.Add($"{prefix}:Protocol '{endpoint.Protocol}' is not a registered protocol. Registered protocols: {registered}.");
            }
            else if (IsDatagramUrl(endpoint.Url) && Attribute.IsDefined(protocol.HandlerType, typeof(StreamTransportOnlyAttribute)))
            {
                failures.Add($"{prefix}:Protocol '{endpoint.Protocol}' needs a byte stream and cannot serve the datagram endpoint '{endpoint.Url}'; use tcp://, unix: or memory://.");
            }

            Tls.AlpnProtocolSelector.Validate(prefix, endpoint, protocols, registered, failures);
            ValidateLimits($"{prefix}:Limits", endpoint.Limits, failures);
            EndpointPipeline.Validate(prefix, root, key, endpoint, options.EndpointDefaults, [.. middleware], services, failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static ConfigurationSchema ServerKeys() => new ConfigurationSchema()
        .Map(nameof(TransportServerOptions.Endpoints), new ConfigurationSchema()
            .Text(nameof(TransportEndpointOptions.Url))
            .Text(nameof(TransportEndpointOptions.Protocol))
            .TrueOrFalse(nameof(TransportEndpointOptions.ReusePort))
            // ALPN names are the keys, protocol names the values: checked by Tls.AlpnProtocolSelector.Validate.
            .Text(nameof(TransportEndpointOptions.Protocols))
            .Section(nameof(TransportEndpointOptions.Limits), s_limits)
            .Section(nameof(TransportEndpointOptions.Tls), TlsKeys())
            .Section(nameof(TransportEndpointOptions.ProxyProtocol), ProxyProtocolKeys())
            // Each element's keys belong to its middleware, which binds and validates them: not checked here.
            .Text(nameof(TransportEndpointOptions.Middleware)))
        .Section(nameof(TransportServerOptions.EndpointDefaults), new ConfigurationSchema()
            .Section(nameof(TransportEndpointDefaults.Tls), TlsKeys())
            .Section(nameof(TransportEndpointDefaults.ProxyProtocol), ProxyProtocolKeys())
            .TrueOrFalse(nameof(TransportEndpointDefaults.ReusePort)))
        .Section(nameof(TransportServerOptions.Limits), s_limits)
        .Section(nameof(TransportServerOptions.Telemetry), new ConfigurationSchema()
            .TrueOrFalse(nameof(TransportTelemetryOptions.ConnectionSpans)))
        .OneOf<UnknownKeyHandling>(nameof(TransportServerOptions.UnknownKeys))
        .Duration(nameof(TransportServerOptions.DrainDelay));

    private static ConfigurationSchema TlsKeys() => new ConfigurationSchema()
        .TrueOrFalse(nameof(TransportTlsOptions.Enabled))
        .Section(nameof(TransportTlsOptions.Certificate), CertificateKeys())
        // Flags ("Tls12, Tls13"): the binder's own message names the key and the value it cannot convert.
        .Text(nameof(TransportTlsOptions.SslProtocols))
        .OneOf<TlsClientCertificateMode>(nameof(TransportTlsOptions.ClientCertificateMode))
        .Text(nameof(TransportTlsOptions.ClientCertificateAuthorityPath))
        .Text(nameof(TransportTlsOptions.ApplicationProtocols))
        .Duration(nameof(TransportTlsOptions.HandshakeTimeout))
        .Map(nameof(TransportTlsOptions.Sni), new ConfigurationSchema()
            .Section(nameof(TransportSniOptions.Certificate), CertificateKeys())
            .Text(nameof(TransportSniOptions.SslProtocols))
            .OneOf<TlsClientCertificateMode>(nameof(TransportSniOptions.ClientCertificateMode))
            .Text(nameof(TransportSniOptions.ApplicationProtocols)));

    private static ConfigurationSchema ProxyProtocolKeys() => new ConfigurationSchema()
        .OneOf<ProxyProtocolMode>(nameof(TransportProxyProtocolOptions.Mode))
        // Each element is parsed as an IPNetwork by the endpoint's check, which names the element and its value.
        .Text(nameof(TransportProxyProtocolOptions.TrustedProxies))
        .Duration(nameof(TransportProxyProtocolOptions.HeaderTimeout))
        .WholeNumber(nameof(TransportProxyProtocolOptions.MaxHeaderBytes));

    private static ConfigurationSchema CertificateKeys() => new ConfigurationSchema()
        .Text(nameof(TransportCertificateOptions.Path))
        .Text(nameof(TransportCertificateOptions.KeyPath))
        .Text(nameof(TransportCertificateOptions.Password))
        .Text(nameof(TransportCertificateOptions.Subject))
        .Text(nameof(TransportCertificateOptions.Store))
        .Text(nameof(TransportCertificateOptions.Location))
        .TrueOrFalse(nameof(TransportCertificateOptions.AllowInvalid));

    private void CheckUnknownKeys(Microsoft.Extensions.Configuration.IConfiguration section, UnknownKeyHandling handling, List<string> failures)
    {
        if (handling == UnknownKeyHandling.Ignore)
        {
            return;
        }

        // Everything under Transport: the server's keys, the registry's, and each section a transport or plugin bound
        // directly below it (Sockets, Udp…): a section bound elsewhere is not ours to judge.
        ConfigurationSchema known = ServerKeys().Section("Registry", ConnectionRegistryOptionsValidator.Schema);
        string prefix = path.Path.Length == 0 ? "" : path.Path + ":";
        foreach (ConfigurationSectionSchema owned in sections)
        {
            if (owned.Path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && owned.Path.Length > prefix.Length
                && owned.Path.IndexOf(':', prefix.Length) < 0)
            {
                known.Section(owned.Path[prefix.Length..], owned.Schema);
            }
        }

        bool warn = Interlocked.Exchange(ref _warned, 1) == 0;
        foreach ((string key, string? closest) in known.FindUnknownKeys(section))
        {
            string message = closest is null ? $"{key} is not a known key." : $"{key} is not a known key; did you mean {closest}?";
            if (handling == UnknownKeyHandling.Error)
            {
                failures.Add($"{message} ({prefix}{nameof(TransportServerOptions.UnknownKeys)} is Error.)");
            }
            else if (warn)
            {
                // Once: the options are created (and validated) by more than one cache.
                TransportLog.UnknownConfigurationKey(_logger, message);
            }
        }
    }

    private void ValidateUrl(string prefix, string key, string? url, Dictionary<EndPoint, string> owners, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            failures.Add($"{prefix}:Url is missing. Accepted: {TransportUrl.AcceptedListenForms}.");
            return;
        }

        if (Systemd.InheritedSockets.IsInheritedUrl(url))
        {
            // Resolved and inspected here, taken over at bind; the transport is the socket's: stream or datagram.
            if (Systemd.InheritedSockets.Validate(prefix, url, failures, out int fd) is not null)
            {
                var descriptor = new InheritedDescriptor(fd);
                if (owners.TryGetValue(descriptor, out string? owner))
                {
                    failures.Add($"{prefix}:Url '{url}' is the same socket (descriptor {fd}) as endpoint '{owner}'; each endpoint needs its own.");
                }
                else
                {
                    owners[descriptor] = key;
                }
            }

            return;
        }

        IReadOnlyList<EndPoint> endpoints;
        try
        {
            endpoints = TransportUrl.ParseListenEndPoints(url);
        }
        catch (FormatException ex)
        {
            failures.Add($"{prefix}:Url {ex.Message} Accepted: {TransportUrl.AcceptedListenForms}.");
            return;
        }
        catch (NotSupportedException ex)
        {
            failures.Add($"{prefix}:Url {ex.Message}");
            return;
        }

        foreach (EndPoint endpoint in endpoints)
        {
            if (transports.ForBind(endpoint) is null)
            {
                failures.Add($"{prefix}:Url '{url}': no registered transport can listen on {endpoint.GetType().Name}.");
                continue;
            }

            if (endpoint is IPEndPoint { Port: 0 })
            {
                continue;
            }

            if (owners.TryGetValue(endpoint, out string? other))
            {
                failures.Add($"{prefix}:Url '{url}' is the same address as endpoint '{other}'; each endpoint needs its own address.");
            }
            else
            {
                owners[endpoint] = key;
            }
        }
    }

    /// <summary>An inherited descriptor as a key among the endpoints' addresses: one socket, one endpoint.</summary>
    private sealed class InheritedDescriptor(int fd) : EndPoint
    {
        public int Fd { get; } = fd;

        public override bool Equals(object? obj) => obj is InheritedDescriptor other && other.Fd == Fd;

        public override int GetHashCode() => Fd;
    }

    private static bool IsDatagramUrl(string? url) => Systemd.InheritedSockets.IsDatagram(url);

    /// <summary>ReusePort: Linux, and only where there is a port to share (tcp://, udp://).</summary>
    private static void ValidateReusePort(string key, bool? value, string? url, List<string> failures)
    {
        if (value != true)
        {
            return;
        }

        if (!OperatingSystem.IsLinux())
        {
            failures.Add($"{key} is true but SO_REUSEPORT is supported on Linux only; remove it or set it to false.");
        }
        else if (url is not null && !url.TrimStart().StartsWith("tcp:", StringComparison.OrdinalIgnoreCase)
            && !url.TrimStart().StartsWith("udp:", StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"{key} is true but the endpoint's Url '{url}' has no port to share: ReusePort applies to tcp:// and udp:// only (an inherited socket is bound already).");
        }
    }

    private static void ValidateLimits(string prefix, TransportLimits limits, List<string> failures)
    {
        if (limits.MaxConcurrentConnections is <= 0)
        {
            failures.Add($"{prefix}:MaxConcurrentConnections must be a positive number (was {limits.MaxConcurrentConnections.Value.ToString(CultureInfo.InvariantCulture)}); leave it unset for no limit.");
        }

        if (limits.ShutdownTimeout is { } timeout && timeout < TimeSpan.Zero)
        {
            failures.Add($"{prefix}:ShutdownTimeout must not be negative (was {timeout}).");
        }

        if (limits.MaxReadBufferSize is < 0)
        {
            failures.Add($"{prefix}:MaxReadBufferSize must be 0 (no limit) or a positive number of bytes (was {limits.MaxReadBufferSize.Value.ToString(CultureInfo.InvariantCulture)}).");
        }

        if (limits.IdleTimeout is { } idle && idle < TimeSpan.Zero)
        {
            failures.Add($"{prefix}:IdleTimeout must not be negative (was {idle}); 00:00:00 or unset means none.");
        }

        if (limits.MaxConnectionLifetime is { } lifetime && lifetime < TimeSpan.Zero)
        {
            failures.Add($"{prefix}:MaxConnectionLifetime must not be negative (was {lifetime}); 00:00:00 or unset means none.");
        }

        if (limits.MaxWriteBufferSize is < 0)
        {
            failures.Add($"{prefix}:MaxWriteBufferSize must be 0 (no limit) or a positive number of bytes (was {limits.MaxWriteBufferSize.Value.ToString(CultureInfo.InvariantCulture)}).");
        }
    }
}
