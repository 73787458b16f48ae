using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>examples/GreetingHost with a secure endpoint, and the TLS clients a user would point at it.</summary>
public sealed class GreetingHostTlsTests : IAsyncLifetime
{
    private readonly TestCertificates _certificates = TestCertificates.Create();
    private ExampleProcess _host = null!;
    private int _port;
    private int _plainPort;

    public async Task InitializeAsync()
    {
        _host = ExampleProcess.Start("GreetingHost", [
            "--Transport:Endpoints:http:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_certificates.Directory, "greeting.sock"),
            "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:https:Protocol=greeting",
            .. _certificates.EndpointArguments("https"),
        ]);
        Match https = await _host.WaitForLineAsync(@"^Waiting for connection on https://127\.0\.0\.1:(\d+) …$");
        Match http = await _host.WaitForLineAsync(@"^Waiting for connection on http://127\.0\.0\.1:(\d+) …$");
        _port = int.Parse(https.Groups[1].Value, CultureInfo.InvariantCulture);
        _plainPort = int.Parse(http.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _certificates.Dispose();
    }

    [ToolFact("curl")]
    public async Task Curl_WithTheCertificateAsCa_GetsThePageOverHttps_AndPlainHttpStillWorks()
    {
        string curl = Tool.RequireOnPath("curl");

        var secure = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", "--cacert", _certificates.CertificatePath,
            "--resolve", $"localhost:{_port}:127.0.0.1", $"https://localhost:{_port}/"]);
        var plain = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", $"http://127.0.0.1:{_plainPort}/"]);

        Assert.True(secure.ExitCode == 0, secure.Error);
        Assert.Contains("You Connected to the Server!", Encoding.UTF8.GetString(secure.Output), StringComparison.Ordinal);
        Assert.Equal(0, plain.ExitCode);
        Assert.Equal(Encoding.UTF8.GetString(plain.Output), Encoding.UTF8.GetString(secure.Output));
    }

    [ToolFact("curl")]
    public async Task Curl_WithoutTrustingTheCertificate_Refuses()
    {
        var run = await Tool.RunAsync(Tool.RequireOnPath("curl"), ["-sS", "--max-time", "10", $"https://127.0.0.1:{_port}/"]);

        Assert.Equal(60, run.ExitCode); // CURLE_PEER_FAILED_VERIFICATION
    }

    [ToolFact("openssl")]
    public async Task OpensslSClient_VerifiesTheCertificate_AndGetsTheResponse()
    {
        var run = await Tool.RunAsync(Tool.RequireOnPath("openssl"),
            ["s_client", "-connect", $"127.0.0.1:{_port}", "-servername", "localhost", "-CAfile", _certificates.CertificatePath,
             "-verify_return_error", "-quiet"],
            "GET / HTTP/1.0\r\n\r\n"u8.ToArray());

        string output = Encoding.UTF8.GetString(run.Output);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.StartsWith("HTTP/1.0 200 OK\r\n", output, StringComparison.Ordinal);
        Assert.Contains("You Connected to the Server!", output, StringComparison.Ordinal);
    }

    [ToolFact("chromium")]
    public async Task Chromium_Headless_ShowsTheGreetingOverHttps()
    {
        // The certificate is self-signed for this test: Chromium is told to accept it, as a developer would.
        var run = await Chromium.DumpDomAsync($"https://127.0.0.1:{_port}/", Path.Combine(_certificates.Directory, "chromium-profile"),
            "--ignore-certificate-errors");

        string dom = Encoding.UTF8.GetString(run.Output);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("<b>You Connected to the Server!</b>", dom, StringComparison.Ordinal);
        Assert.Contains("<a href=\"austingwalters.com\">Austin Walters!</a>", dom, StringComparison.Ordinal);
        Assert.DoesNotContain(_host.Output, line => line.Contains("fail", StringComparison.OrdinalIgnoreCase));
    }

    [ToolFact("chromium")]
    public async Task Chromium_TrustingOnlyThisCertificatesKey_ShowsTheGreeting_AndWithoutTrustShowsNoPage()
    {
        // Chromium's pin by public key (SHA-256 of the SubjectPublicKeyInfo): it accepts this server's certificate and no other.
        string spki = Convert.ToBase64String(SHA256.HashData(_certificates.Certificate.PublicKey.ExportSubjectPublicKeyInfo()));
        string url = $"https://127.0.0.1:{_port}/";

        var pinned = await Chromium.DumpDomAsync(url, Path.Combine(_certificates.Directory, "pinned-profile"), "--ignore-certificate-errors-spki-list=" + spki);
        var untrusted = await Chromium.DumpDomAsync(url, Path.Combine(_certificates.Directory, "untrusted-profile"));

        Assert.True(pinned.ExitCode == 0, pinned.Error);
        Assert.Contains("<b>You Connected to the Server!</b>", Encoding.UTF8.GetString(pinned.Output), StringComparison.Ordinal);
        Assert.DoesNotContain("You Connected", Encoding.UTF8.GetString(untrusted.Output), StringComparison.Ordinal);
    }

    [ToolFact("curl")]
    public async Task PlainHttpToTheHttpsPort_GetsNoPage_AndTheHostKeepsServing()
    {
        var wrong = await Tool.RunAsync(Tool.RequireOnPath("curl"), ["-sS", "--max-time", "10", $"http://127.0.0.1:{_port}/"]);
        var right = await Tool.RunAsync(Tool.RequireOnPath("curl"), ["-sS", "--max-time", "10", "--cacert", _certificates.CertificatePath, $"https://127.0.0.1:{_port}/"]);

        Assert.NotEqual(0, wrong.ExitCode);
        Assert.DoesNotContain("You Connected", Encoding.UTF8.GetString(wrong.Output), StringComparison.Ordinal);
        Assert.True(right.ExitCode == 0, right.Error);
        Assert.DoesNotContain(_host.Output, line => line.Contains("fail", StringComparison.OrdinalIgnoreCase));
    }
}
