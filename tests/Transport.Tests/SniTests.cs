using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;

namespace Transport.Tests;

/// <summary>A certificate per host name the client asks for (SNI), matched as Kestrel matches them.</summary>
public sealed class SniTests : IDisposable
{
    private readonly TestCertificates _fallback = TestCertificates.Create();
    private readonly X509Certificate2 _exact = TestCertificates.CreateCertificate("a.test");
    private readonly X509Certificate2 _wildcard = TestCertificates.CreateCertificate("example.test");

    public SniTests()
    {
        TestCertificates.Write(_exact, Path("a.pem"), Path("a.key"));
        TestCertificates.Write(_wildcard, Path("w.pem"), Path("w.key"));
    }

    public void Dispose()
    {
        _exact.Dispose();
        _wildcard.Dispose();
        _fallback.Dispose();
    }

    [Theory]
    [InlineData("a.test", "exact")]
    [InlineData("A.TEST", "exact")]
    [InlineData("api.example.test", "wildcard")]
    [InlineData("deep.api.example.test", "wildcard")]
    [InlineData("example.test", "fallback")]
    [InlineData("c.test", "fallback")]
    public async Task ServerName_PicksTheCertificate_ExactThenWildcardThenTheEndpoints(string serverName, string expected)
    {
        using IHost host = ConfiguredHost.Build(Settings(withEndpointCertificate: true));
        await host.StartAsync().DefaultTimeout();
        try
        {
            byte[]? presented = await HandshakeAsync(host, serverName);
            X509Certificate2 certificate = expected switch { "exact" => _exact, "wildcard" => _wildcard, _ => _fallback.Certificate };
            Assert.Equal(certificate.RawData, presented);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task UnknownServerName_WithoutAFallback_FailsThatHandshake_AtDebug()
    {
        using IHost host = ConfiguredHost.Build(Settings(withEndpointCertificate: false), (services, _) =>
            services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Debug).AddProvider(_logs)));
        await host.StartAsync().DefaultTimeout();
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(host, "c.test"));
            Assert.NotNull(await HandshakeAsync(host, "a.test"));

            await TestTimeouts.UntilAsync(() => _logs.Entries.Any(e => e.EventId.Id == 40));
            TestLogEntry failed = _logs.Entries.Single(e => e.EventId.Id == 40);
            Assert.Equal(LogLevel.Debug, failed.Level);
            Assert.Contains("No certificate for the server name 'c.test'", failed.Message, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task BadSniPattern_FailsAtStart()
    {
        Dictionary<string, string?> settings = Settings(withEndpointCertificate: true);
        settings["Transport:Endpoints:secure:Tls:Sni:a.*.test:Certificate:Path"] = Path("a.pem");
        settings["Transport:Endpoints:secure:Tls:Sni:a.*.test:Certificate:KeyPath"] = Path("a.key");

        var ex = await ConfiguredHost.StartFailsAsync(settings);

        Assert.Contains("Transport:Endpoints:secure:Tls:Sni:a.*.test: 'a.*.test' is not a host name pattern.", ex.Message, StringComparison.Ordinal);
    }

    private readonly TestLoggerProvider _logs = new();

    private string Path(string file) => System.IO.Path.Combine(_fallback.Directory, file);

    private Dictionary<string, string?> Settings(bool withEndpointCertificate)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:secure:Protocol"] = "echo",
            ["Transport:Endpoints:secure:Tls:Sni:a.test:Certificate:Path"] = Path("a.pem"),
            ["Transport:Endpoints:secure:Tls:Sni:a.test:Certificate:KeyPath"] = Path("a.key"),
            ["Transport:Endpoints:secure:Tls:Sni:*.example.test:Certificate:Path"] = Path("w.pem"),
            ["Transport:Endpoints:secure:Tls:Sni:*.example.test:Certificate:KeyPath"] = Path("w.key"),
        };
        if (withEndpointCertificate)
        {
            settings["Transport:Endpoints:secure:Tls:Certificate:Path"] = _fallback.CertificatePath;
            settings["Transport:Endpoints:secure:Tls:Certificate:KeyPath"] = _fallback.KeyPath;
        }
        else
        {
            settings["Transport:Endpoints:secure:Tls:Enabled"] = "true";
        }

        return settings;
    }

    /// <summary>Handshakes as <paramref name="serverName"/>, accepting any of the test's certificates; returns the one presented.</summary>
    private async Task<byte[]?> HandshakeAsync(IHost host, string serverName)
    {
        byte[]? presented = null;
        byte[][] known = [_exact.RawData, _wildcard.RawData, _fallback.Certificate.RawData];
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                presented = certificate?.GetRawCertData();
                return presented is not null && known.Any(k => k.AsSpan().SequenceEqual(presented));
            },
        };
        var server = host.Services.GetRequiredService<ITransportServer>();
        await using ConnectionContext connection = await host.Services.GetRequiredService<TransportConnectionFactory>()
            .ConnectAsync(server.Bindings[0].EndPoint, options).DefaultTimeout();
        await connection.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await connection.ReceiveExactlyAsync(1).DefaultTimeout());
        return presented;
    }
}
