using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/EchoHost with a TLS endpoint, driven by socat's OpenSSL client as a user would.</summary>
public sealed class EchoHostTlsTests : IDisposable
{
    private readonly TestCertificates _certificates = TestCertificates.Create();

    public void Dispose() => _certificates.Dispose();

    [ToolFact("socat")]
    public async Task SocatOpenssl_VerifyingTheCertificate_GetsOneMebibyteBackByteForByte()
    {
        await using ExampleProcess host = ExampleProcess.Start("EchoHost", [
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_certificates.Directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0",
            "--Transport:Endpoints:tls:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:tls:Protocol=echo",
            .. _certificates.EndpointArguments("tls"),
        ]);
        Match tls = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+) \(endpoint 'tls', protocol 'echo'\)");
        byte[] payload = ConnectionTestExtensions.RandomBytes(1024 * 1024);

        var run = await Tool.RunAsync(Tool.RequireOnPath("socat"),
            ["-t", "10", "-", $"OPENSSL:127.0.0.1:{tls.Groups[1].Value},cafile={_certificates.CertificatePath},verify=1,openssl-commonname=localhost"], payload);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.True(payload.AsSpan().SequenceEqual(run.Output), $"TLS echo differs: {run.Output.Length} bytes back, {run.Error}");
        Assert.Contains(host.Output, l => l.Contains("runs each connection through: tls → protocol 'echo'", StringComparison.Ordinal));
        Assert.Equal(0, await host.StopAsync());
    }
}
