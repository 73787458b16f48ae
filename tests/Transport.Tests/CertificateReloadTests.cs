using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// Certificate hot swap: a changed certificate file is used for new handshakes without unbinding the endpoint, open
/// connections carry on, and a bad file keeps the last good certificate.
/// </summary>
public sealed class CertificateReloadTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "transport-tls-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly X509Certificate2 _first = TestCertificates.CreateCertificate("localhost");
    private readonly X509Certificate2 _second = TestCertificates.CreateCertificate("localhost");

    public CertificateReloadTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        _first.Dispose();
        _second.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task FilesReplaced_NewHandshakesUseTheNewCertificate_OpenConnectionsCarryOn()
    {
        string certificate = Path.Combine(_directory, "server.pem");
        string key = Path.Combine(_directory, "server.key");
        TestCertificates.Write(_first, certificate, key);
        await using TransportTestServer server = await StartAsync(certificate, key);
        await using ConnectionContext open = await ConnectAsync(server, _first);

        // As a deployment tool does: write aside, then rename over the served files.
        TestCertificates.Write(_second, certificate + ".new", key + ".new");
        File.Move(certificate + ".new", certificate, overwrite: true);
        File.Move(key + ".new", key, overwrite: true);
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 44));

        await using ConnectionContext fresh = await ConnectAsync(server, _second);
        await AssertEchoesAsync(open);
        await AssertEchoesAsync(fresh);
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task KubernetesSecretSymlinkSwap_IsPickedUp()
    {
        // The layout of a secret volume: files are links through ..data, which is swapped to a new directory at once.
        WriteVersion("..v1", _first);
        File.CreateSymbolicLink(Path.Combine(_directory, "..data"), "..v1");
        File.CreateSymbolicLink(Path.Combine(_directory, "tls.crt"), "..data/tls.crt");
        File.CreateSymbolicLink(Path.Combine(_directory, "tls.key"), "..data/tls.key");
        await using TransportTestServer server = await StartAsync(Path.Combine(_directory, "tls.crt"), Path.Combine(_directory, "tls.key"));
        await using ConnectionContext open = await ConnectAsync(server, _first);

        WriteVersion("..v2", _second);
        File.CreateSymbolicLink(Path.Combine(_directory, "..data_tmp"), "..v2");
        var swap = await Tool.RunAsync(Tool.RequireOnPath("mv"), ["-T", Path.Combine(_directory, "..data_tmp"), Path.Combine(_directory, "..data")]);
        Assert.True(swap.ExitCode == 0, swap.Error);
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 44));

        await using ConnectionContext fresh = await ConnectAsync(server, _second);
        await AssertEchoesAsync(open);
    }

    [Fact]
    public async Task BadNewFile_IsLogged_AndTheLastGoodCertificateKept()
    {
        string certificate = Path.Combine(_directory, "server.pem");
        string key = Path.Combine(_directory, "server.key");
        TestCertificates.Write(_first, certificate, key);
        await using TransportTestServer server = await StartAsync(certificate, key);

        File.WriteAllText(certificate + ".new", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        File.Move(certificate + ".new", certificate, overwrite: true);
        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.EventId.Id == 45));

        TestLogEntry warning = server.Logs.Entries.Single(e => e.EventId.Id == 45);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(_first.Thumbprint, warning.Message, StringComparison.Ordinal);
        await using ConnectionContext fresh = await ConnectAsync(server, _first);
        await AssertEchoesAsync(fresh);
    }

    private void WriteVersion(string name, X509Certificate2 certificate)
    {
        string directory = Path.Combine(_directory, name);
        Directory.CreateDirectory(directory);
        TestCertificates.Write(certificate, Path.Combine(directory, "tls.crt"), Path.Combine(directory, "tls.key"));
    }

    private static Task<TransportTestServer> StartAsync(string certificate, string key) =>
        TransportTestServer.StartAsync(b => b.Transport.AddProtocol<EchoProtocol>("echo").Listen(b.ListenUrl(TestTransport.Tcp), "echo",
            endpoint => endpoint.Tls = new TransportTlsOptions { Certificate = { Path = certificate, KeyPath = key } }));

    /// <summary>Connects over TLS, trusting only <paramref name="expected"/> (the handshake fails on any other).</summary>
    private static async Task<ConnectionContext> ConnectAsync(TransportTestServer server, X509Certificate2 expected)
    {
        byte[]? presented = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                presented = certificate?.GetRawCertData();
                return presented is not null && presented.AsSpan().SequenceEqual(expected.RawData);
            },
        };
        ConnectionContext connection = await server.Client.ConnectAsync(server.EndPoint, options).DefaultTimeout();
        Assert.Equal(expected.RawData, presented);
        return connection;
    }

    private static async Task AssertEchoesAsync(ConnectionContext connection)
    {
        await connection.SendAsync("still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), await connection.ReceiveExactlyAsync(10).DefaultTimeout());
    }
}
