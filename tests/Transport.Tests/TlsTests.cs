using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>TLS on every stream transport: the handshake, the features a protocol reads, and clients that get it wrong.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly TestCertificates _certificates = TestCertificates.Create();

    public static IEnumerable<object[]> Streams => TestTransports.Streams;

    public void Dispose() => _certificates.Dispose();

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task Echo_OverTls_OnEveryStreamTransport(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(transport);

        await using ConnectionContext client = await server.Client.ConnectAsync(server.EndPoint, _certificates.ClientOptions()).DefaultTimeout();
        byte[] payload = ConnectionTestExtensions.RandomBytes(100_000);
        Task<byte[]> echoed = client.ReceiveExactlyAsync(payload.Length);
        await client.SendAsync(payload);

        Assert.Equal(payload, await echoed.DefaultTimeout());
        Assert.True(client.Features.Get<ITlsHandshakeFeature>()!.Protocol is SslProtocols.Tls12 or SslProtocols.Tls13);
        Assert.Contains(server.Logs.Entries, e => e.Message == $"Endpoint '{server.Bindings[0].Name}' runs each connection through: tls → protocol 'under-test'.");
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public async Task Protocol_ReadsNegotiatedAlpnAndServerName_FromTheFeatures(TestTransport transport)
    {
        await using TransportTestServer server = await StartAsync<TlsInfoProtocol>(transport, tls => tls.ApplicationProtocols.AddRange(["x-first", "x-second"]));

        await using ConnectionContext client = await server.Client.ConnectAsync(server.EndPoint, _certificates.ClientOptions("localhost", "x-second")).DefaultTimeout();
        string info = Encoding.ASCII.GetString(await client.ReceiveToEndAsync().DefaultTimeout());

        Assert.Matches(@"^tls=Tls1[23] alpn=x-second sni=localhost client=none$", info);
        Assert.Equal("x-second", Encoding.ASCII.GetString(client.Features.Get<ITransportTlsFeature>()!.ApplicationProtocol.Span));
    }

    [Fact]
    public async Task PlaintextOnATlsPort_EndsThatConnection_AtDebug_Counted()
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(TestTransport.Tcp);
        using var failures = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.tls.handshake_failures");

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint).DefaultTimeout();
        await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray()).DefaultTimeout();
        await ReadToEndAsync(socket);

        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 40));
        TestLogEntry failed = server.Logs.Entries.Single(e => e.EventId.Id == 40);
        Assert.Equal(LogLevel.Debug, failed.Level);
        Assert.Null(failed.Exception);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Equal("tls_handshake_failed", Assert.Single(failures.GetMeasurementSnapshot()).Tags["error.type"]);
    }

    [Fact]
    public async Task ClientThatStallsMidHandshake_IsClosedAtTheHandshakeTimeout()
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(TestTransport.Tcp, tls => tls.HandshakeTimeout = TimeSpan.FromMilliseconds(300));
        using var failures = new MetricCollector<long>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.tls.handshake_failures");

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint).DefaultTimeout();
        // The first bytes of a ClientHello record, and then nothing.
        await socket.SendAsync(new byte[] { 0x16, 0x03, 0x01 }).DefaultTimeout();
        await ReadToEndAsync(socket);

        Assert.Equal(LogLevel.Debug, Assert.Single(server.Logs.Entries, e => e.EventId.Id == 41).Level);
        Assert.Equal("tls_handshake_timeout", Assert.Single(failures.GetMeasurementSnapshot()).Tags["error.type"]);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task ClientThatDoesNotTrustTheCertificate_FailsItsHandshake_ServerEndsThatConnectionQuietly()
    {
        await using TransportTestServer server = await StartAsync<EchoProtocol>(TestTransport.Tcp);

        await Assert.ThrowsAsync<AuthenticationException>(async () =>
            await server.Client.ConnectAsync(server.EndPoint, new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "localhost" }).DefaultTimeout());

        // A TLS 1.3 client checks the certificate after the handshake, so the server may see a completed handshake
        // and then the client leaving: either way, that connection ends quietly.
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id is 4 or 40));
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task RequiredClientCertificate_Missing_ServerEndsTheConnectionBeforeTheProtocol()
    {
        await using TransportTestServer server = await StartAsync<TlsInfoProtocol>(TestTransport.Tcp,
            tls => tls.ClientCertificateMode = TlsClientCertificateMode.RequireCertificate);

        byte[]? received = null;
        try
        {
            // With TLS 1.3 the client finishes its side of the handshake before the server rejects it; the rejection
            // arrives on its first read.
            await using ConnectionContext client = await server.Client.ConnectAsync(server.EndPoint, _certificates.ClientOptions()).DefaultTimeout();
            received = await client.ReceiveToEndAsync().DefaultTimeout();
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
        }

        Assert.True(received is null or { Length: 0 });
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 40));
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task MutualTls_WithAPrivateAuthority_TheProtocolSeesTheClientCertificate_AndOthersAreRefused()
    {
        using X509Certificate2 authority = TestCertificates.CreateAuthority("Test Client CA");
        using X509Certificate2 stranger = TestCertificates.CreateAuthority("Another CA");
        using X509Certificate2 client = TestCertificates.IssueClientCertificate(authority, "client-1");
        using X509Certificate2 impostor = TestCertificates.IssueClientCertificate(stranger, "client-1");
        string authorityPath = Path.Combine(_certificates.Directory, "clients-ca.pem");
        File.WriteAllText(authorityPath, authority.ExportCertificatePem());
        await using TransportTestServer server = await StartAsync<TlsInfoProtocol>(TestTransport.Tcp, tls =>
        {
            tls.ClientCertificateMode = TlsClientCertificateMode.RequireCertificate;
            tls.ClientCertificateAuthorityPath = authorityPath;
        });

        System.Net.Security.SslClientAuthenticationOptions options = _certificates.ClientOptions();
        options.ClientCertificates = [client];
        await using (ConnectionContext connection = await server.Client.ConnectAsync(server.EndPoint, options).DefaultTimeout())
        {
            Assert.EndsWith("client=CN=client-1", Encoding.ASCII.GetString(await connection.ReceiveToEndAsync().DefaultTimeout()), StringComparison.Ordinal);
        }

        options = _certificates.ClientOptions();
        options.ClientCertificates = [impostor];
        byte[]? refused = null;
        try
        {
            await using ConnectionContext connection = await server.Client.ConnectAsync(server.EndPoint, options).DefaultTimeout();
            refused = await connection.ReceiveToEndAsync().DefaultTimeout();
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
        }

        Assert.True(refused is null or { Length: 0 });
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 40));
    }

    private Task<TransportTestServer> StartAsync<TProtocol>(TestTransport transport, Action<TransportTlsOptions>? configure = null)
        where TProtocol : ConnectionHandler =>
        TransportTestServer.StartAsync(b => b.Transport.AddProtocol<TProtocol>("under-test").Listen(b.ListenUrl(transport), "under-test", endpoint =>
        {
            endpoint.Tls = new TransportTlsOptions { Certificate = { Path = _certificates.CertificatePath, KeyPath = _certificates.KeyPath } };
            configure?.Invoke(endpoint.Tls);
        }));

    private static async Task ReadToEndAsync(Socket socket)
    {
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None).DefaultTimeout() > 0)
            {
            }
        }
        catch (SocketException)
        {
            // A reset is an end too.
        }
    }

    /// <summary>Writes what the TLS features say about the session, then closes.</summary>
    private sealed class TlsInfoProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            ITlsHandshakeFeature handshake = connection.Features.Get<ITlsHandshakeFeature>()!;
            ITransportTlsFeature tls = connection.Features.Get<ITransportTlsFeature>()!;
            string alpn = Encoding.ASCII.GetString(tls.ApplicationProtocol.Span);
            string text = $"tls={handshake.Protocol} alpn={alpn} sni={handshake.HostName} client={tls.ClientCertificate?.Subject ?? "none"}";
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(text));
            await connection.Transport.Output.CompleteAsync();
        }
    }
}
