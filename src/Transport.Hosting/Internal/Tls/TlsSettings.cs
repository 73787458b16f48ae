using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Transport.Hosting.Internal.Tls;

/// <summary>An endpoint's TLS options with the server-wide defaults filled in, and the keys to name in messages.</summary>
internal sealed class TlsSettings
{
    private TlsSettings(TransportTlsOptions endpoint, TransportTlsOptions defaults, string endpointKey, string defaultsKey, IReadOnlyDictionary<string, string> protocols)
    {
        bool own = endpoint.Certificate.IsSet;
        Certificate = own ? endpoint.Certificate : defaults.Certificate;
        CertificateKey = (own ? endpointKey : defaultsKey) + ":Certificate";
        SslProtocols = endpoint.SslProtocols ?? defaults.SslProtocols ?? SslProtocols.None;
        ClientCertificateMode = endpoint.ClientCertificateMode ?? defaults.ClientCertificateMode ?? TlsClientCertificateMode.NoCertificate;
        ClientCertificateAuthorityPath = endpoint.ClientCertificateAuthorityPath ?? defaults.ClientCertificateAuthorityPath;
        ClientCertificateAuthorityKey = (endpoint.ClientCertificateAuthorityPath is null ? defaultsKey : endpointKey) + ":ClientCertificateAuthorityPath";
        ApplicationProtocols = endpoint.ApplicationProtocols.Count > 0 ? endpoint.ApplicationProtocols : defaults.ApplicationProtocols;
        ApplicationProtocolsKey = (endpoint.ApplicationProtocols.Count > 0 ? endpointKey : defaultsKey) + ":ApplicationProtocols";
        Protocols = protocols;
        HandshakeTimeout = endpoint.HandshakeTimeout ?? defaults.HandshakeTimeout ?? TransportTlsOptions.DefaultHandshakeTimeout;
        HandshakeTimeoutKey = (endpoint.HandshakeTimeout is null ? defaultsKey : endpointKey) + ":HandshakeTimeout";
        Sni = [.. endpoint.Sni.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase)
            .Select(e => (e.Key, new TlsSettings(this, e.Value, $"{endpointKey}:Sni:{e.Key}")))];
    }

    private TlsSettings(TlsSettings endpoint, TransportSniOptions sni, string key)
    {
        bool own = sni.Certificate.IsSet;
        Certificate = own ? sni.Certificate : endpoint.Certificate;
        CertificateKey = own ? key + ":Certificate" : endpoint.CertificateKey;
        SslProtocols = sni.SslProtocols ?? endpoint.SslProtocols;
        ClientCertificateMode = sni.ClientCertificateMode ?? endpoint.ClientCertificateMode;
        ClientCertificateAuthorityPath = endpoint.ClientCertificateAuthorityPath;
        ClientCertificateAuthorityKey = endpoint.ClientCertificateAuthorityKey;
        ApplicationProtocols = sni.ApplicationProtocols.Count > 0 ? sni.ApplicationProtocols : endpoint.ApplicationProtocols;
        ApplicationProtocolsKey = sni.ApplicationProtocols.Count > 0 ? key + ":ApplicationProtocols" : endpoint.ApplicationProtocolsKey;
        Protocols = endpoint.Protocols;
        HandshakeTimeout = endpoint.HandshakeTimeout;
        HandshakeTimeoutKey = endpoint.HandshakeTimeoutKey;
        Sni = [];
        SniKey = key;
    }

    /// <summary>The entries per host name, each with the endpoint's values filled in.</summary>
    public IReadOnlyList<(string Name, TlsSettings Settings)> Sni { get; }

    /// <summary>The key of this SNI entry; null for the endpoint itself.</summary>
    public string? SniKey { get; }

    public TransportCertificateOptions Certificate { get; }

    public string CertificateKey { get; }

    public SslProtocols SslProtocols { get; }

    public TlsClientCertificateMode ClientCertificateMode { get; }

    public IReadOnlyList<string> ApplicationProtocols { get; }

    public string? ClientCertificateAuthorityPath { get; }

    public string ClientCertificateAuthorityKey { get; }

    public string ApplicationProtocolsKey { get; }

    /// <summary>The endpoint's protocol per ALPN name (<c>Protocols</c>): these names are offered too.</summary>
    public IReadOnlyDictionary<string, string> Protocols { get; }

    public TimeSpan HandshakeTimeout { get; }

    public string HandshakeTimeoutKey { get; }

    /// <summary>The endpoint's effective TLS settings, or null when it serves no TLS.</summary>
    public static TlsSettings? Resolve(TransportEndpointOptions endpoint, TransportEndpointDefaults defaults, string endpointKey, string root) =>
        endpoint.Tls is { Enabled: not false } tls
            ? new TlsSettings(tls, defaults.Tls, endpointKey + ":Tls", root + ":EndpointDefaults:Tls", endpoint.Protocols)
            : null;

    /// <summary>The options every handshake on the endpoint uses, with <paramref name="certificate"/>.</summary>
    public SslServerAuthenticationOptions CreateServerOptions(X509Certificate2 certificate)
    {
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
            EnabledSslProtocols = SslProtocols,
            ClientCertificateRequired = ClientCertificateMode != TlsClientCertificateMode.NoCertificate,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        IReadOnlyList<string> offered = AlpnProtocolSelector.Offered(ApplicationProtocols, Protocols);
        if (offered.Count > 0)
        {
            options.ApplicationProtocols = [.. offered.Select(p => new SslApplicationProtocol(p))];
        }

        X509Certificate2Collection? authorities = ClientCertificateAuthorityPath is null ? null : LoadAuthorities(ClientCertificateAuthorityPath, ClientCertificateAuthorityKey);
        bool required = ClientCertificateMode == TlsClientCertificateMode.RequireCertificate;
        options.RemoteCertificateValidationCallback = ClientCertificateMode == TlsClientCertificateMode.NoCertificate
            ? null
            : (_, certificate, chain, errors) => certificate is null
                ? !required
                : authorities is null ? errors == SslPolicyErrors.None : ChainsTo(certificate, chain, authorities);
        return options;
    }

    /// <summary>Loads the CA certificates of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file has none, or cannot be read.</exception>
    public static X509Certificate2Collection LoadAuthorities(string path, string key)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new InvalidDataException($"{key} '{path}': cannot load the certificate authorities: {ex.Message}", ex);
        }

        return authorities.Count > 0 ? authorities : throw new InvalidDataException($"{key} '{path}': the file holds no PEM certificate.");
    }

    private static bool ChainsTo(X509Certificate certificate, X509Chain? presented, X509Certificate2Collection authorities)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            // Intermediates the client sent along.
            foreach (X509ChainElement element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return certificate is X509Certificate2 leaf && chain.Build(leaf);
    }
}
