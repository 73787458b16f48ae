using System.Security.Authentication;

namespace Transport.Hosting;

/// <summary>
/// TLS on a stream endpoint (<c>Transport:Endpoints:&lt;name&gt;:Tls</c>), with server-wide defaults under
/// <c>Transport:EndpointDefaults:Tls</c>. An endpoint serves TLS when it has a <c>Tls</c> section; each value it does
/// not set comes from the defaults, then from the built-in default.
/// </summary>
public sealed class TransportTlsOptions
{
    /// <summary>The default of <see cref="HandshakeTimeout"/>: 10 seconds, as Kestrel's.</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether the endpoint serves TLS. <c>"Tls": { "Enabled": true }</c> turns it on with every value from
    /// <c>EndpointDefaults:Tls</c>; <c>false</c> turns it off while keeping the section.
    /// </summary>
    /// <remarks>Defaults to <see langword="true"/> on an endpoint that has a <c>Tls</c> section.</remarks>
    public bool? Enabled { get; set; }

    /// <summary>The server certificate, in Kestrel's vocabulary (PEM, PKCS#12 or a certificate store).</summary>
    public TransportCertificateOptions Certificate { get; set; } = new();

    /// <summary>The TLS versions allowed, e.g. <c>"Tls12, Tls13"</c>.</summary>
    /// <remarks>Defaults to <see cref="System.Security.Authentication.SslProtocols.None"/>: the operating system's choice.</remarks>
    public SslProtocols? SslProtocols { get; set; }

    /// <summary>Whether the server asks the client for a certificate, and whether it must send one.</summary>
    /// <remarks>Defaults to <see cref="TlsClientCertificateMode.NoCertificate"/>.</remarks>
    public TlsClientCertificateMode? ClientCertificateMode { get; set; }

    /// <summary>
    /// A PEM file of the certificate authorities that client certificates must chain to, instead of the system's trusted
    /// roots: for mutual TLS with a private CA.
    /// </summary>
    /// <remarks>Defaults to none: the system's trusted roots.</remarks>
    public string? ClientCertificateAuthorityPath { get; set; }

    /// <summary>
    /// The application protocols offered with ALPN, in the server's order of preference (e.g. <c>["h2", "http/1.1"]</c>).
    /// A client that offers none of them fails the handshake; a client that uses no ALPN is served.
    /// </summary>
    /// <remarks>Defaults to none: ALPN is not negotiated.</remarks>
    public List<string> ApplicationProtocols { get; } = [];

    /// <summary>
    /// Certificates and options per host name the client asks for (SNI), as Kestrel matches them: an exact name
    /// (<c>api.example.com</c>), then the longest wildcard (<c>*.example.com</c>, any name under it), then <c>*</c>.
    /// A value an entry does not set comes from this endpoint's. A name that matches no entry gets the endpoint's own
    /// certificate, or fails the handshake when it has none.
    /// </summary>
    /// <remarks>Defaults to none. Only on an endpoint, not under <c>EndpointDefaults</c>.</remarks>
    public Dictionary<string, TransportSniOptions> Sni { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>How long a client has to complete the handshake before the connection is closed.</summary>
    /// <remarks>Defaults to 10 seconds.</remarks>
    public TimeSpan? HandshakeTimeout { get; set; }
}

/// <summary>The TLS options for one host name under <see cref="TransportTlsOptions.Sni"/>.</summary>
public sealed class TransportSniOptions
{
    /// <summary>The certificate for this host name.</summary>
    /// <remarks>Defaults to the endpoint's.</remarks>
    public TransportCertificateOptions Certificate { get; set; } = new();

    /// <summary>The TLS versions allowed for this host name.</summary>
    /// <remarks>Defaults to the endpoint's.</remarks>
    public SslProtocols? SslProtocols { get; set; }

    /// <summary>Whether the server asks clients of this host name for a certificate.</summary>
    /// <remarks>Defaults to the endpoint's.</remarks>
    public TlsClientCertificateMode? ClientCertificateMode { get; set; }

    /// <summary>The ALPN protocols offered for this host name.</summary>
    /// <remarks>Defaults to the endpoint's.</remarks>
    public List<string> ApplicationProtocols { get; } = [];
}

/// <summary>
/// Where the server certificate comes from, named as Kestrel's <c>Certificates</c> configuration: a PEM certificate
/// <see cref="Path"/> with its <see cref="KeyPath"/>, a PKCS#12 (<c>.pfx</c>) <see cref="Path"/> with its
/// <see cref="Password"/>, or a <see cref="Subject"/> in a certificate <see cref="Store"/>.
/// </summary>
public sealed class TransportCertificateOptions
{
    /// <summary>The certificate file: PEM (with <see cref="KeyPath"/>, or with the key in the same file) or PKCS#12.</summary>
    public string? Path { get; set; }

    /// <summary>The PEM private key file of the certificate in <see cref="Path"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The PKCS#12 file's password, or the password of an encrypted PEM key.</summary>
    public string? Password { get; set; }

    /// <summary>The subject name to find in <see cref="Store"/> (instead of a file).</summary>
    public string? Subject { get; set; }

    /// <summary>The certificate store to search for <see cref="Subject"/>.</summary>
    /// <remarks>Defaults to <c>My</c>.</remarks>
    public string? Store { get; set; }

    /// <summary>The store location: <c>CurrentUser</c> or <c>LocalMachine</c>.</summary>
    /// <remarks>Defaults to <c>CurrentUser</c>.</remarks>
    public string? Location { get; set; }

    /// <summary>Whether a store certificate outside its validity period, or without the server-authentication usage, may be used.</summary>
    /// <remarks>Defaults to <see langword="false"/>.</remarks>
    public bool? AllowInvalid { get; set; }

    internal bool IsSet => Path is not null || Subject is not null;
}

/// <summary>Whether a TLS server asks for, and requires, a client certificate (Kestrel's <c>ClientCertificateMode</c>).</summary>
public enum TlsClientCertificateMode
{
    /// <summary>The server does not ask for a client certificate.</summary>
    NoCertificate,

    /// <summary>The server asks; a client may send none, but one it sends must be valid.</summary>
    AllowCertificate,

    /// <summary>The server asks, and a client without a valid certificate fails the handshake.</summary>
    RequireCertificate,
}
