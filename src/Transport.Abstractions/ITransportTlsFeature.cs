using System.Security.Cryptography.X509Certificates;

namespace Transport;

/// <summary>
/// Set on a connection that arrived over TLS, once the handshake has completed: the client's certificate and the
/// application protocol negotiated with ALPN. The handshake's parameters (protocol version, cipher suite, the host
/// name the client asked for) are on the ecosystem's
/// <see cref="Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature"/>, set on the same connection.
/// </summary>
/// <remarks>
/// The members are named as in ASP.NET Core's <c>ITlsConnectionFeature</c> and <c>ITlsApplicationProtocolFeature</c>,
/// which live in the ASP.NET Core shared framework that a protocol plugin does not reference.
/// </remarks>
public interface ITransportTlsFeature
{
    /// <summary>The certificate the client presented, or <see langword="null"/> when it presented none.</summary>
    X509Certificate2? ClientCertificate { get; }

    /// <summary>The protocol negotiated with ALPN (e.g. <c>h2</c>, <c>http/1.1</c>), empty when none was.</summary>
    ReadOnlyMemory<byte> ApplicationProtocol { get; }
}
