using System.Net;
using System.Net.Security;
using Microsoft.AspNetCore.Connections;
using Transport.Hosting.Internal.Tls;

namespace Transport.Hosting;

/// <summary>
/// The client side: connects to any endpoint a registered transport supports, returning the same connection
/// type the server side hands to protocols. Registered by <c>AddTransport</c> as <see cref="IConnectionFactory"/>.
/// </summary>
public sealed class TransportConnectionFactory : IConnectionFactory
{
    private readonly ITransportFactory[] _transports;

    /// <summary>Creates the factory over the registered transports.</summary>
    /// <param name="transports">The transports, tried in registration order.</param>
    public TransportConnectionFactory(IEnumerable<ITransportFactory> transports)
    {
        ArgumentNullException.ThrowIfNull(transports);
        _transports = [.. transports];
    }

    /// <inheritdoc />
    public ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        foreach (ITransportFactory transport in _transports)
        {
            if (transport.CanConnect(endpoint))
            {
                return transport.ConnectAsync(endpoint, cancellationToken);
            }
        }

        throw new NotSupportedException($"No registered transport can connect to {TransportUrl.Format(endpoint)}.");
    }

    /// <summary>Connects to a URL such as <c>tcp://127.0.0.1:7007</c>, <c>unix:/run/app.sock</c> or <c>memory://echo</c>.</summary>
    /// <param name="url">The URL.</param>
    /// <param name="cancellationToken">Cancels the connect.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="FormatException">The URL is malformed.</exception>
    /// <exception cref="ConnectionRefusedException">Nothing accepted the connection.</exception>
    public ValueTask<ConnectionContext> ConnectAsync(string url, CancellationToken cancellationToken = default) =>
        ConnectAsync(TransportUrl.ParseConnectEndPoint(url), cancellationToken);

    /// <summary>
    /// Connects to <paramref name="endpoint"/> and runs a TLS handshake as the client: the connection returned reads and
    /// writes through the TLS session, and carries <see cref="Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature"/>
    /// and <see cref="ITransportTlsFeature"/>. Works on every stream transport, <c>memory://</c> included.
    /// </summary>
    /// <param name="endpoint">Where to connect.</param>
    /// <param name="tls">
    /// The handshake: <see cref="SslClientAuthenticationOptions.TargetHost"/> (the server name to check and send as
    /// SNI), <see cref="SslClientAuthenticationOptions.RemoteCertificateValidationCallback"/> (e.g. to trust a test
    /// certificate), <see cref="SslClientAuthenticationOptions.ClientCertificates"/>, <see cref="SslClientAuthenticationOptions.ApplicationProtocols"/>.
    /// </param>
    /// <param name="cancellationToken">Cancels the connect and the handshake.</param>
    /// <returns>The connection, after the handshake.</returns>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed (e.g. the server's certificate is not trusted).</exception>
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, SslClientAuthenticationOptions tls, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tls);
        ConnectionContext connection = await ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return await TlsClientConnection.AuthenticateAsync(connection, tls, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Connects to a URL and runs a TLS handshake as the client; see <see cref="ConnectAsync(EndPoint, SslClientAuthenticationOptions, CancellationToken)"/>.</summary>
    /// <param name="url">The URL, e.g. <c>tcp://127.0.0.1:7443</c>.</param>
    /// <param name="tls">The handshake's options.</param>
    /// <param name="cancellationToken">Cancels the connect and the handshake.</param>
    /// <returns>The connection, after the handshake.</returns>
    public ValueTask<ConnectionContext> ConnectAsync(string url, SslClientAuthenticationOptions tls, CancellationToken cancellationToken = default) =>
        ConnectAsync(TransportUrl.ParseConnectEndPoint(url), tls, cancellationToken);

    /// <summary>
    /// Connects to <paramref name="endpoint"/> and sends <paramref name="proxyHeader"/> before anything else, as a proxy
    /// that forwards the connection does (HAProxy's <c>send-proxy</c>, <c>send-proxy-v2</c>); then, with
    /// <paramref name="tls"/>, runs the TLS handshake over it. Stream transports only.
    /// </summary>
    /// <param name="endpoint">Where to connect.</param>
    /// <param name="proxyHeader">The header, e.g. <see cref="ProxyProtocolHeader.CreateV2"/>.</param>
    /// <param name="tls">The TLS handshake after the header, or <see langword="null"/> for none.</param>
    /// <param name="cancellationToken">Cancels the connect, the header's send and the handshake.</param>
    /// <returns>The connection, after the header (and the handshake).</returns>
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, ProxyProtocolHeader proxyHeader, SslClientAuthenticationOptions? tls = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(proxyHeader);
        ConnectionContext connection = await ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        try
        {
            System.IO.Pipelines.PipeWriter output = connection.Transport.Output;
            int length = proxyHeader.WriteTo(output.GetSpan(proxyHeader.Length));
            output.Advance(length);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return tls is null ? connection : await TlsClientConnection.AuthenticateAsync(connection, tls, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
