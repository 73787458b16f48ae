using System.Diagnostics.Metrics;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// The TLS instruments through the host's own <see cref="IMeterFactory"/>: handshake duration and active handshakes as
/// Kestrel's <c>kestrel.tls_handshake.duration</c> and <c>kestrel.active_tls_handshakes</c>, and each certificate's time to expiry.
/// </summary>
public sealed class TlsMetricsTests : IDisposable
{
    private readonly TestCertificates _certificates = TestCertificates.Create();
    private readonly X509Certificate2 _sni = TestCertificates.CreateCertificate("api.test");
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public TlsMetricsTests() =>
        TestCertificates.Write(_sni, Path.Combine(_certificates.Directory, "api.pem"), Path.Combine(_certificates.Directory, "api.key"));

    public void Dispose()
    {
        _sni.Dispose();
        _certificates.Dispose();
    }

    [Fact]
    public async Task CompletedHandshake_IsRecorded_WithItsProtocolVersion_AndActiveHandshakesReturnToZero()
    {
        await using TransportTestServer server = await StartAsync();
        IMeterFactory meters = server.Services.GetRequiredService<IMeterFactory>();
        using var duration = new MetricCollector<double>(meters, "Transport", "transport.tls_handshake.duration");
        using var active = new MetricCollector<long>(meters, "Transport", "transport.active_tls_handshakes");

        await using (ConnectionContext client = await server.Client.ConnectAsync(server.EndPoint, _certificates.ClientOptions()).DefaultTimeout())
        {
            await duration.WaitForMeasurementsAsync(1).DefaultTimeout();
        }

        CollectedMeasurement<double> handshake = Assert.Single(duration.GetMeasurementSnapshot());
        Assert.True(handshake.Value > 0);
        Assert.Equal(server.Bindings[0].Name, handshake.Tags["transport.endpoint"]);
        Assert.Contains(handshake.Tags["tls.protocol.version"], new object?[] { "1.2", "1.3" });
        Assert.False(handshake.Tags.ContainsKey("error.type"));
        Assert.Equal([1L, -1L], active.GetMeasurementSnapshot().Select(m => m.Value));
    }

    [Fact]
    public async Task FailedHandshake_IsRecorded_WithErrorType()
    {
        await using TransportTestServer server = await StartAsync();
        using var duration = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.tls_handshake.duration");

        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(server.EndPoint).DefaultTimeout();
            await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray()).DefaultTimeout();
            await duration.WaitForMeasurementsAsync(1).DefaultTimeout();
        }

        CollectedMeasurement<double> failed = Assert.Single(duration.GetMeasurementSnapshot());
        Assert.Equal("tls_handshake_failed", failed.Tags["error.type"]);
        Assert.False(failed.Tags.ContainsKey("tls.protocol.version"));
    }

    [Fact]
    public async Task CertificateExpiry_IsReported_PerEndpointAndSniName_InSecondsToNotAfter()
    {
        await using TransportTestServer server = await StartAsync();
        using var expiry = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.tls.certificate.expiry");

        _time.Advance(TimeSpan.FromHours(1));
        expiry.RecordObservableInstruments();

        IReadOnlyList<CollectedMeasurement<double>> measured = expiry.GetMeasurementSnapshot();
        Assert.Equal(2, measured.Count);
        CollectedMeasurement<double> own = Assert.Single(measured, m => !m.Tags.ContainsKey("tls.client.server_name"));
        CollectedMeasurement<double> api = Assert.Single(measured, m => Equals(m.Tags.GetValueOrDefault("tls.client.server_name"), "api.test"));
        Assert.Equal(server.Bindings[0].Name, own.Tags["transport.endpoint"]);
        Assert.Equal((new DateTimeOffset(_certificates.Certificate.NotAfter.ToUniversalTime()) - _time.GetUtcNow()).TotalSeconds, own.Value, precision: 3);
        Assert.Equal((new DateTimeOffset(_sni.NotAfter.ToUniversalTime()) - _time.GetUtcNow()).TotalSeconds, api.Value, precision: 3);
    }

    private Task<TransportTestServer> StartAsync() =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Transport.AddProtocol<EchoProtocol>("under-test").Listen(b.ListenUrl(TestTransport.Tcp), "under-test", endpoint =>
            {
                endpoint.Tls = new TransportTlsOptions { Certificate = { Path = _certificates.CertificatePath, KeyPath = _certificates.KeyPath } };
                endpoint.Tls.Sni["api.test"] = new TransportSniOptions
                {
                    Certificate = { Path = Path.Combine(_certificates.Directory, "api.pem"), KeyPath = Path.Combine(_certificates.Directory, "api.key") },
                };
            });
        });
}
