using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Transport.Hosting.Internal.ProxyProtocol;
using Transport.Hosting.Internal.Tls;

namespace Transport.Hosting.Internal.Middleware;

/// <summary>
/// An endpoint's connection pipeline: the built-in middleware at fixed positions (PROXY protocol first, then TLS), then the endpoint's
/// <c>Middleware</c> list in order, then the protocol. The same checks run when the options are validated and when the
/// pipeline is built, so what passed validation builds.
/// </summary>
internal static class EndpointPipeline
{
    public const string TlsName = "tls";

    public static void Validate(string prefix, string root, string endpointName, TransportEndpointOptions endpoint, TransportEndpointDefaults defaults,
        IReadOnlyList<ConnectionMiddlewareRegistration> registered, IServiceProvider services, List<string> failures)
    {
        bool datagram = IsDatagram(endpoint.Url);
        ProxyProtocolSettings.Resolve(endpoint, defaults, prefix, root, failures);
        TlsSettings? tls = TlsSettings.Resolve(endpoint, defaults, prefix, root);
        if (tls is not null)
        {
            if (datagram)
            {
                failures.Add($"{prefix}:Tls: TLS needs a byte stream and cannot serve the datagram endpoint '{endpoint.Url}'; use tcp://, unix: or memory://.");
            }
            else
            {
                ValidateTls(tls, failures);
            }
        }

        var context = new ConnectionMiddlewareContext(endpointName, endpoint.Url ?? "", services);
        for (int i = 0; i < endpoint.Middleware.Count; i++)
        {
            string key = $"{prefix}:Middleware:{i.ToString(CultureInfo.InvariantCulture)}";
            ConnectionMiddlewareRegistration? registration = Find(endpoint.Middleware[i], key, registered, failures);
            if (registration is null)
            {
                continue;
            }

            if (datagram && registration.StreamOnly)
            {
                failures.Add($"{key} '{registration.Name}' needs a byte stream and cannot serve the datagram endpoint '{endpoint.Url}'; use tcp://, unix: or memory://.");
                continue;
            }

            registration.Prepare(endpoint.Middleware[i], context, key, failures);
        }
    }

    /// <summary>Builds the pipeline; <paramref name="description"/> says what runs, in order, for the log.</summary>
    /// <exception cref="InvalidOperationException">The configuration no longer holds (e.g. the certificate file went away since validation).</exception>
    public static ConnectionDelegate Build(string prefix, string root, string endpointName, TransportEndpointOptions endpoint, TransportEndpointDefaults defaults,
        IReadOnlyList<ConnectionMiddlewareRegistration> registered, IServiceProvider services, ConnectionHandler protocol, string protocolName,
        ILogger logger, TransportMetrics metrics, TimeProvider time, List<IDisposable> owned, IdleSweeper? idle, TimeSpan idleTimeout,
        TimeSpan lifetime, out string description)
    {
        var failures = new List<string>();
        var context = new ConnectionMiddlewareContext(endpointName, endpoint.Url ?? "", services);
        var names = new List<string>();
        var builder = new ConnectionBuilder(services);

        // First of all: the header precedes the TLS handshake on the wire. On a datagram endpoint the UDP transport
        // strips it from each datagram before the session lookup (TransportListenOptions.DatagramProxyProtocol).
        if (ProxyProtocolSettings.Resolve(endpoint, defaults, prefix, root, failures) is { } proxy)
        {
            if (IsDatagram(endpoint.Url))
            {
                names.Add(ProxyProtocolMiddleware.Name + " (per datagram, in the transport)");
            }
            else
            {
                builder.Use(next => new ProxyProtocolMiddleware(next, endpointName, proxy, logger, metrics, time).OnConnectionAsync);
                names.Add(ProxyProtocolMiddleware.Name);
            }
        }
        else if (failures.Count > 0)
        {
            throw new InvalidOperationException(string.Join(" ", failures));
        }

        TlsSettings? tls = TlsSettings.Resolve(endpoint, defaults, prefix, root);
        if (tls is not null)
        {
            ServerCertificate? own = tls.Certificate.IsSet ? new ServerCertificate(tls, endpointName, logger, time) : null;
            if (own is not null)
            {
                owned.Add(own);
                owned.Add(metrics.Tls.Track(endpointName, serverName: null, own));
            }

            var entries = new List<(string, ServerCertificate)>();
            foreach ((string name, TlsSettings sni) in tls.Sni)
            {
                ServerCertificate certificate = new(sni, $"{endpointName}' SNI '{name}", logger, time);
                owned.Add(certificate);
                owned.Add(metrics.Tls.Track(endpointName, name, certificate));
                entries.Add((name, certificate));
            }

            var certificates = new SniSelector(own, entries);
            builder.Use(next => new TlsServerMiddleware(next, endpointName, tls, certificates, logger, metrics, time).OnConnectionAsync);
            names.Add(TlsName);
        }

        if (idle is not null && (idleTimeout > TimeSpan.Zero || lifetime > TimeSpan.Zero))
        {
            // One middleware and one sweep entry per connection for both limits.
            builder.Use(next => new IdleTimeoutMiddleware(next, endpointName, idleTimeout, lifetime, idle).OnConnectionAsync);
            if (idleTimeout > TimeSpan.Zero)
            {
                names.Add(IdleTimeoutMiddleware.Name);
            }

            if (lifetime > TimeSpan.Zero)
            {
                names.Add(IdleTimeoutMiddleware.LifetimeName);
            }
        }

        for (int i = 0; i < endpoint.Middleware.Count; i++)
        {
            string key = $"{prefix}:Middleware:{i.ToString(CultureInfo.InvariantCulture)}";
            ConnectionMiddlewareRegistration? registration = Find(endpoint.Middleware[i], key, registered, failures);
            Func<ConnectionDelegate, ConnectionDelegate>? factory = registration?.Prepare(endpoint.Middleware[i], context, key, failures);
            if (factory is null)
            {
                throw new InvalidOperationException(string.Join(" ", failures));
            }

            builder.Use(factory);
            names.Add(registration!.Name);
        }

        builder.Run(protocol.OnConnectedAsync);
        var text = new StringBuilder();
        foreach (string name in names)
        {
            text.Append(name).Append(" → ");
        }

        description = text.Append("protocol '").Append(protocolName).Append('\'').ToString();
        return builder.Build();
    }

    private static void ValidateTls(TlsSettings tls, List<string> failures)
    {
        // With SNI entries the endpoint needs no certificate of its own: a name that matches none fails its handshake.
        if (tls.Certificate.IsSet || tls.Sni.Count == 0)
        {
            ValidateCertificate(tls, $"{tls.CertificateKey} is missing: set Path (PEM with KeyPath, or PKCS#12 with Password) or Subject (a certificate store), on the endpoint or under EndpointDefaults:Tls:Certificate.", failures);
        }

        if (tls.ClientCertificateAuthorityPath is { } authorities)
        {
            try
            {
                TlsSettings.LoadAuthorities(authorities, tls.ClientCertificateAuthorityKey);
            }
            catch (InvalidDataException ex)
            {
                failures.Add(ex.Message);
            }
        }

        if (tls.HandshakeTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{tls.HandshakeTimeoutKey} must be positive (was {tls.HandshakeTimeout}).");
        }

        ValidateApplicationProtocols(tls, failures);
        foreach ((string name, TlsSettings sni) in tls.Sni)
        {
            if (!SniSelector.IsValidName(name))
            {
                failures.Add($"{sni.SniKey}: '{name}' is not a host name pattern. Accepted: a name (api.example.com), a wildcard (*.example.com) or *.");
            }

            if (!ReferenceEquals(sni.Certificate, tls.Certificate))
            {
                ValidateCertificate(sni, "", failures);
            }
            else if (!tls.Certificate.IsSet)
            {
                failures.Add($"{sni.SniKey}:Certificate is missing: set Path or Subject here, or a certificate for the whole endpoint.");
            }

            if (!ReferenceEquals(sni.ApplicationProtocols, tls.ApplicationProtocols))
            {
                ValidateApplicationProtocols(sni, failures);
            }
        }
    }

    private static void ValidateCertificate(TlsSettings tls, string missing, List<string> failures)
    {
        if (!tls.Certificate.IsSet)
        {
            failures.Add(missing);
            return;
        }

        try
        {
            CertificateLoader.Load(tls.Certificate, tls.CertificateKey).Dispose();
        }
        catch (InvalidDataException ex)
        {
            failures.Add(ex.Message);
        }
    }

    private static void ValidateApplicationProtocols(TlsSettings tls, List<string> failures)
    {
        foreach (string protocol in tls.ApplicationProtocols)
        {
            int length = Encoding.UTF8.GetByteCount(protocol ?? "");
            if (length is 0 or > 255)
            {
                failures.Add($"{tls.ApplicationProtocolsKey} '{protocol}': an ALPN protocol name is 1 to 255 bytes.");
            }
        }
    }

    private static ConnectionMiddlewareRegistration? Find(IConfigurationSection element, string key,
        IReadOnlyList<ConnectionMiddlewareRegistration> registered, List<string> failures)
    {
        string? name = element.Value ?? element["Name"];
        if (string.IsNullOrWhiteSpace(name))
        {
            failures.Add($"{key}:Name is missing. Registered middleware: {Names(registered)}.");
            return null;
        }

        ConnectionMiddlewareRegistration? registration = registered.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase));
        if (registration is null)
        {
            string hint = string.Equals(name, TlsName, StringComparison.OrdinalIgnoreCase) ? " TLS is built in: configure it under the endpoint's Tls section." : "";
            failures.Add($"{key} '{name}' is not registered connection middleware. Registered middleware: {Names(registered)}.{hint}");
        }

        return registration;
    }

    private static string Names(IReadOnlyList<ConnectionMiddlewareRegistration> registered) =>
        registered.Count == 0
            ? "(none: register one with AddConnectionMiddleware)"
            : string.Join(", ", registered.Select(r => r.Name).Order(StringComparer.OrdinalIgnoreCase));

    private static bool IsDatagram(string? url) => Systemd.InheritedSockets.IsDatagram(url);
}
