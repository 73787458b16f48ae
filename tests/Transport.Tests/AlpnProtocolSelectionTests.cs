using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Memory;
using Transport.Protocols.Greeting;

namespace Transport.Tests;

/// <summary>One TLS port, two protocols: the endpoint's <c>Protocols</c> map picks the plugin by the negotiated ALPN name.</summary>
public sealed class AlpnProtocolSelectionTests : IDisposable
{
    private readonly TestCertificates _certificates = TestCertificates.Create();

    public void Dispose() => _certificates.Dispose();

    [ToolFact("openssl")]
    public async Task OpensslSClient_WithAlpnEcho_GetsTheEcho_AndWithoutAlpn_TheGreetingPage_OnTheSamePort()
    {
        using IHost host = ConfiguredHost.Build(Settings(), (_, transport) => transport.AddProtocol<GreetingProtocol>("greeting"));
        await host.StartAsync().DefaultTimeout();
        try
        {
            int port = ((IPEndPoint)host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint).Port;
            string openssl = Tool.RequireOnPath("openssl");

            var greeting = await Tool.RunAsync(openssl,
                ["s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", "-CAfile", _certificates.CertificatePath, "-verify_return_error", "-quiet"],
                "GET / HTTP/1.0\r\n\r\n"u8.ToArray());
            (string echoed, string session) = await EchoLineAsync(openssl, port, "echo/1", "hello over ALPN");

            Assert.True(greeting.ExitCode == 0, greeting.Error);
            Assert.StartsWith("HTTP/1.0 200 OK\r\n", Encoding.UTF8.GetString(greeting.Output), StringComparison.Ordinal);
            Assert.Equal("hello over ALPN", echoed);
            Assert.Contains("ALPN protocol: echo/1", session, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task TestKitClient_NegotiatingTheMappedName_ReachesThatProtocol_OverTheMemoryTransportToo()
    {
        Dictionary<string, string?> settings = Settings();
        settings["Transport:Endpoints:secure:Url"] = "memory://alpn-" + Guid.NewGuid().ToString("N");
        using IHost host = ConfiguredHost.Build(settings, (services, transport) =>
        {
            transport.AddProtocol<GreetingProtocol>("greeting");
            services.AddMemoryTransport();
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            var factory = host.Services.GetRequiredService<TransportConnectionFactory>();
            string url = settings["Transport:Endpoints:secure:Url"]!;
            await using var echo = await factory.ConnectAsync(url, _certificates.ClientOptions("localhost", "echo/1")).DefaultTimeout();
            await echo.SendAsync("ping"u8.ToArray()).DefaultTimeout();
            Assert.Equal("ping"u8.ToArray(), await echo.ReceiveExactlyAsync(4).DefaultTimeout());

            await using var web = await factory.ConnectAsync(url, _certificates.ClientOptions("localhost")).DefaultTimeout();
            await web.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray()).DefaultTimeout();
            Assert.StartsWith("HTTP/1.0 200 OK", Encoding.ASCII.GetString(await web.ReceiveToEndAsync().DefaultTimeout()), StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task UnknownProtocolInTheMap_FailsAtStart_NamingKeyAndValue()
    {
        Dictionary<string, string?> settings = Settings();
        settings["Transport:Endpoints:secure:Protocols:redis"] = "kv";

        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(settings, (_, transport) => transport.AddProtocol<GreetingProtocol>("greeting"));

        Assert.Equal("Transport:Endpoints:secure:Protocols:redis 'kv' is not a registered protocol. Registered protocols: echo, greeting.", Assert.Single(ex.Failures));
    }

    [Fact]
    public async Task MapWithoutTls_FailsAtStart()
    {
        OptionsValidationException ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:plain:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:plain:Protocol"] = "echo",
            ["Transport:Endpoints:plain:Protocols:echo/1"] = "echo",
        });

        Assert.StartsWith("Transport:Endpoints:plain:Protocols: choosing the protocol by ALPN needs TLS on the endpoint", Assert.Single(ex.Failures), StringComparison.Ordinal);
    }

    private Dictionary<string, string?> Settings() => new()
    {
        ["Transport:UnknownKeys"] = "Error",
        ["Transport:Endpoints:secure:Url"] = "tcp://127.0.0.1:0",
        ["Transport:Endpoints:secure:Protocol"] = "greeting",
        ["Transport:Endpoints:secure:Protocols:echo/1"] = "echo",
        ["Transport:Endpoints:secure:Tls:Certificate:Path"] = _certificates.CertificatePath,
        ["Transport:Endpoints:secure:Tls:Certificate:KeyPath"] = _certificates.KeyPath,
    };

    /// <summary>
    /// Sends one line through <c>openssl s_client -alpn</c> and waits for it to come back before closing its input (s_client
    /// has no half-close: closing first could end the session before the echo arrives). Returns the echoed line and the
    /// session summary s_client printed.
    /// </summary>
    private async Task<(string Echoed, string Session)> EchoLineAsync(string openssl, int port, string alpn, string line)
    {
        var info = new ProcessStartInfo(openssl)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", "-CAfile", _certificates.CertificatePath, "-verify_return_error", "-alpn", alpn })
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        Task<string> errors = process.StandardError.ReadToEndAsync();
        try
        {
            var session = new StringBuilder();
            await process.StandardInput.WriteLineAsync(line).DefaultTimeout();
            await process.StandardInput.FlushAsync().DefaultTimeout();
            string? read;
            while ((read = await process.StandardOutput.ReadLineAsync().DefaultTimeout()) is not null && read != line)
            {
                session.AppendLine(read);
            }

            process.StandardInput.Close();
            await process.WaitForExitAsync().DefaultTimeout();
            Assert.True(read == line, $"no echo; s_client printed: {session} {await errors.DefaultTimeout()}");
            return (read!, session.ToString());
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
