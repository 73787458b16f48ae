using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>TLS from appsettings-shaped configuration: Kestrel's certificate vocabulary, the server-wide defaults, and bad values.</summary>
public sealed class TlsConfigurationTests : IDisposable
{
    private readonly TestCertificates _certificates = TestCertificates.Create();

    public void Dispose() => _certificates.Dispose();

    [Fact]
    public async Task CertificateFromEndpointDefaults_ServesEveryEndpointThatTurnsTlsOn()
    {
        using IHost host = Build(new()
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:EndpointDefaults:Tls:Certificate:Path"] = _certificates.CertificatePath,
            ["Transport:EndpointDefaults:Tls:Certificate:KeyPath"] = _certificates.KeyPath,
            ["Transport:EndpointDefaults:Tls:SslProtocols"] = "Tls13",
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Enabled"] = "true",
            ["Transport:Endpoints:plain:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:plain:Protocol"] = "echo",
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            var server = host.Services.GetRequiredService<ITransportServer>();
            var client = host.Services.GetRequiredService<TransportConnectionFactory>();
            await using (ConnectionContext secure = await client.ConnectAsync(server.Bindings.Single(b => b.Name == "secure").EndPoint, _certificates.ClientOptions()).DefaultTimeout())
            {
                await secure.SendAsync("over tls"u8.ToArray());
                Assert.Equal("over tls", Encoding.ASCII.GetString(await secure.ReceiveExactlyAsync(8).DefaultTimeout()));
                Assert.Equal(System.Security.Authentication.SslProtocols.Tls13,
                    secure.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>()!.Protocol);
            }

            await using ConnectionContext plain = await client.ConnectAsync(server.Bindings.Single(b => b.Name == "plain").EndPoint).DefaultTimeout();
            await plain.SendAsync("in clear"u8.ToArray());
            Assert.Equal("in clear", Encoding.ASCII.GetString(await plain.ReceiveExactlyAsync(8).DefaultTimeout()));
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task Pkcs12WithPassword_IsLoaded()
    {
        string pfx = Path.Combine(_certificates.Directory, "server.pfx");
        File.WriteAllBytes(pfx, _certificates.Certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12, "s3cret"));
        using IHost host = Build(new()
        {
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Certificate:Path"] = pfx,
            ["Transport:Endpoints:secure:Tls:Certificate:Password"] = "s3cret",
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            var server = host.Services.GetRequiredService<ITransportServer>();
            await using ConnectionContext secure = await host.Services.GetRequiredService<TransportConnectionFactory>()
                .ConnectAsync(server.Bindings[0].EndPoint, _certificates.ClientOptions()).DefaultTimeout();
            await secure.SendAsync("x"u8.ToArray());
            Assert.Equal("x"u8.ToArray(), await secure.ReceiveExactlyAsync(1).DefaultTimeout());
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task MisspelledTlsKey_IsReported_WithTheClosestKnownOne()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Certificate:Path"] = _certificates.CertificatePath,
            ["Transport:Endpoints:secure:Tls:Certificate:KeyPath"] = _certificates.KeyPath,
            ["Transport:Endpoints:secure:Tls:HandshakeTimout"] = "00:00:05",
        });

        Assert.Contains("Transport:Endpoints:secure:Tls:HandshakeTimout is not a known key; did you mean Transport:Endpoints:secure:Tls:HandshakeTimeout?", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingCertificate_FailsAtStart_NamingTheKey()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:HandshakeTimeout"] = "00:00:05",
        });

        Assert.Contains("Transport:EndpointDefaults:Tls:Certificate is missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnreadableCertificateFile_FailsAtStart_NamingKeyAndValue()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Certificate:Path"] = "/nonexistent/server.pem",
            ["Transport:Endpoints:secure:Tls:Certificate:KeyPath"] = "/nonexistent/server.key",
        });

        Assert.Contains("Transport:Endpoints:secure:Tls:Certificate:Path '/nonexistent/server.pem' (KeyPath '/nonexistent/server.key'): cannot load the certificate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CertificateWithoutItsKey_FailsAtStart()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Certificate:Path"] = _certificates.CertificatePath,
        });

        Assert.Contains($"Transport:Endpoints:secure:Tls:Certificate:Path '{_certificates.CertificatePath}': cannot load the certificate", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TlsOnUdp_AndBadTimeout_FailAtStart_NamingTheKeys()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:dgram:Url"] = "udp://127.0.0.1:0",
            ["Transport:Endpoints:dgram:Protocol"] = "echo",
            ["Transport:Endpoints:dgram:Tls:Certificate:Path"] = _certificates.CertificatePath,
            ["Transport:Endpoints:dgram:Tls:Certificate:KeyPath"] = _certificates.KeyPath,
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Certificate:Path"] = _certificates.CertificatePath,
            ["Transport:Endpoints:secure:Tls:Certificate:KeyPath"] = _certificates.KeyPath,
            ["Transport:Endpoints:secure:Tls:HandshakeTimeout"] = "00:00:00",
        });

        Assert.Contains("Transport:Endpoints:dgram:Tls: TLS needs a byte stream and cannot serve the datagram endpoint 'udp://127.0.0.1:0'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Endpoints:secure:Tls:HandshakeTimeout must be positive (was 00:00:00)", ex.Message, StringComparison.Ordinal);
    }

    private static Task<OptionsValidationException> StartFailsAsync(Dictionary<string, string?> settings) => ConfiguredHost.StartFailsAsync(settings);

    private static IHost Build(Dictionary<string, string?> settings) => ConfiguredHost.Build(settings);
}
