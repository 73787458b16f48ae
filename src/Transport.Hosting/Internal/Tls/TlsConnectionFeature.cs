using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections.Features;

namespace Transport.Hosting.Internal.Tls;

/// <summary>The negotiated TLS session of one connection, read from its <see cref="SslStream"/> after the handshake.</summary>
internal sealed class TlsConnectionFeature(SslStream stream, string hostName) : ITlsHandshakeFeature, ITransportTlsFeature
{
    public X509Certificate2? ClientCertificate { get; } = stream.RemoteCertificate as X509Certificate2;

    public ReadOnlyMemory<byte> ApplicationProtocol { get; } = stream.NegotiatedApplicationProtocol.Protocol;

    public SslProtocols Protocol => stream.SslProtocol;

    public TlsCipherSuite? NegotiatedCipherSuite => stream.NegotiatedCipherSuite;

    public string HostName => hostName;

    // The contract still carries the pre-TLS 1.3 split of the cipher suite; SslStream still reports it.
#pragma warning disable SYSLIB0058
    public CipherAlgorithmType CipherAlgorithm => stream.CipherAlgorithm;

    public int CipherStrength => stream.CipherStrength;

    public HashAlgorithmType HashAlgorithm => stream.HashAlgorithm;

    public int HashStrength => stream.HashStrength;

    public ExchangeAlgorithmType KeyExchangeAlgorithm => stream.KeyExchangeAlgorithm;

    public int KeyExchangeStrength => stream.KeyExchangeStrength;
#pragma warning restore SYSLIB0058
}
