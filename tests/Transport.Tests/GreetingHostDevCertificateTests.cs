using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Tests;

/// <summary>
/// examples/GreetingHost as it ships: its <c>https</c> endpoint has no certificate, so the host makes a development
/// certificate for localhost at the first run and serves the page over HTTPS with it. Every run here has its own
/// port and its own certificate directory, never the user's.
/// </summary>
public sealed class GreetingHostDevCertificateTests : IAsyncLifetime
{
    private readonly string _directory = EchoServer.NewTempDirectory();
    private string _certificates = null!;
    private ExampleProcess _host = null!;
    private int _port;
    private int _plainPort;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _certificates = Path.Combine(_directory, "dev-certs");
        (_host, _port, _plainPort) = await StartAsync(_certificates, "first");
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private string CertificatePath => Path.Combine(_certificates, "localhost.pem");

    [ToolFact("curl")]
    public async Task Curl_TrustingTheGeneratedCertificate_GetsThePageOverHttps_ByNameAndByAddress()
    {
        string curl = Tool.RequireOnPath("curl");

        var byName = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", "--cacert", CertificatePath,
            "--resolve", $"localhost:{_port}:127.0.0.1", $"https://localhost:{_port}/"]);
        var byAddress = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", "--cacert", CertificatePath, $"https://127.0.0.1:{_port}/"]);
        var plain = await Tool.RunAsync(curl, ["-sS", "--max-time", "10", $"http://127.0.0.1:{_plainPort}/"]);

        Assert.True(byName.ExitCode == 0, byName.Error);
        Assert.True(byAddress.ExitCode == 0, byAddress.Error);
        Assert.Contains("You Connected to the Server!", Encoding.UTF8.GetString(byName.Output), StringComparison.Ordinal);
        Assert.Equal(Encoding.UTF8.GetString(plain.Output), Encoding.UTF8.GetString(byAddress.Output));
        Assert.Contains(_host.Output, l => l.Contains("Development certificate for localhost created: " + CertificatePath, StringComparison.Ordinal));
    }

    [ToolFact("chromium")]
    public async Task Chromium_IgnoringCertificateErrors_ShowsTheGreetingOverHttps()
    {
        var run = await Chromium.DumpDomAsync($"https://127.0.0.1:{_port}/", Path.Combine(_directory, "chromium-profile"),
            "--ignore-certificate-errors");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("<b>You Connected to the Server!</b>", Encoding.UTF8.GetString(run.Output), StringComparison.Ordinal);
    }

    [Fact]
    public void TheCertificate_IsForLocalhostAndBothLoopbacks_AndTheKeyIsReadableByItsOwnerOnly()
    {
        using X509Certificate2 certificate = X509Certificate2.CreateFromPemFile(CertificatePath, Path.Combine(_certificates, "localhost.key"));
        string names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().Format(multiLine: false);

        Assert.True(certificate.HasPrivateKey);
        Assert.Equal("CN=localhost", certificate.Subject);
        Assert.True(certificate.MatchesHostname("localhost"));
        Assert.True(certificate.MatchesHostname("127.0.0.1"));
        Assert.True(certificate.MatchesHostname("::1"), names);
        Assert.True(certificate.NotAfter > DateTime.UtcNow.AddDays(300));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_certificates, "localhost.key")));
        }
    }

    [Fact]
    public async Task ASecondRun_ReusesTheCertificate()
    {
        string before = await File.ReadAllTextAsync(CertificatePath);

        (ExampleProcess second, _, _) = await StartAsync(_certificates, "second");
        await using (second)
        {
            Assert.Equal(before, await File.ReadAllTextAsync(CertificatePath));
            Assert.DoesNotContain(second.Output, l => l.Contains("Development certificate", StringComparison.Ordinal));
            Assert.Equal(0, await second.StopAsync());
        }
    }

    [Fact]
    public async Task WithoutADirectorySetting_TheCertificateGoesUnderXdgDataHome()
    {
        string data = Path.Combine(_directory, "xdg-data");
        await using ExampleProcess host = ExampleProcess.StartWithEnvironment("GreetingHost",
            new Dictionary<string, string?> { ["XDG_DATA_HOME"] = data },
            [.. PlainEndpoints("xdg"), "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0"]);
        await host.WaitForLineAsync(@"^Waiting for connection on https://127\.0\.0\.1:\d+ …$");

        Assert.True(File.Exists(Path.Combine(data, "transport", "dev-certs", "localhost.pem")));
        Assert.True(File.Exists(Path.Combine(data, "transport", "dev-certs", "localhost.key")));
    }

    [ToolFact("curl")]
    public async Task ADirectoryThatCannotBeWritten_IsAWarning_AndThePlainEndpointsStillServe()
    {
        // Under a regular file: no user, root included, can create it.
        string file = Path.Combine(_directory, "not-a-directory");
        await File.WriteAllTextAsync(file, "x");
        await using ExampleProcess host = ExampleProcess.Start("GreetingHost",
            [.. PlainEndpoints("unwritable"), "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0", "--DevCertificate:Directory=" + Path.Combine(file, "certs")]);
        Match http = await host.WaitForLineAsync(@"^Waiting for connection on http://127\.0\.0\.1:(\d+) …$");

        var plain = await Tool.RunAsync(Tool.RequireOnPath("curl"), ["-sS", "--max-time", "10", $"http://127.0.0.1:{http.Groups[1].Value}/"]);

        Assert.True(plain.ExitCode == 0, plain.Error);
        Assert.Contains("You Connected to the Server!", Encoding.UTF8.GetString(plain.Output), StringComparison.Ordinal);
        Assert.Contains(host.Output, l => l.Contains("Endpoints 'https' are not served", StringComparison.Ordinal));
        Assert.DoesNotContain(host.Output, l => l.Contains("https://", StringComparison.Ordinal));
        Assert.Equal(0, await host.StopAsync());
    }

    private string[] PlainEndpoints(string name) =>
    [
        "--Transport:Endpoints:http:Url=tcp://127.0.0.1:0",
        "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, name + ".sock"),
    ];

    private async Task<(ExampleProcess Host, int Port, int PlainPort)> StartAsync(string certificates, string name)
    {
        ExampleProcess host = ExampleProcess.Start("GreetingHost",
            [.. PlainEndpoints(name), "--Transport:Endpoints:https:Url=tcp://127.0.0.1:0", "--DevCertificate:Directory=" + certificates]);
        Match https = await host.WaitForLineAsync(@"^Waiting for connection on https://127\.0\.0\.1:(\d+) …$");
        Match http = await host.WaitForLineAsync(@"^Waiting for connection on http://127\.0\.0\.1:(\d+) …$");
        return (host, int.Parse(https.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(http.Groups[1].Value, CultureInfo.InvariantCulture));
    }
}
