using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>Bad configuration fails the host at start with one message naming the key, the value and what is accepted.</summary>
public sealed class ConfigurationValidationTests
{
    [Theory]
    [InlineData("tcp://127.0.0.1:99999", "port '99999' is not a number from 0 to 65535")]
    [InlineData("ftp://127.0.0.1:21", "unknown scheme 'ftp'")]
    [InlineData("tcp://127.0.0.1", "the port is missing")]
    [InlineData("tcp://example.org:7007", "must be an IP address, localhost or *")]
    [InlineData("unix:relative/echo.sock", "expected unix:/absolute/path")]
    [InlineData("memory://", "expected memory://NAME")]
    [InlineData("just-a-word", "it has no scheme")]
    public async Task BadUrl_FailsAtStart_NamingKeyValueAndAcceptedForms(string url, string why)
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = url,
            ["Transport:Endpoints:main:Protocol"] = "echo",
        });

        Assert.Contains("Transport:Endpoints:main:Url", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"'{url}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Contains("Accepted: tcp://HOST:PORT", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedUdpUrl_FailsAtStart_NamingTheScheme()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:dgram:Url"] = "udp:127.0.0.1:7007",
            ["Transport:Endpoints:dgram:Protocol"] = "echo",
        });

        Assert.Contains("Transport:Endpoints:dgram:Url 'udp:127.0.0.1:7007' is not a valid endpoint URL: expected udp://HOST:PORT", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownProtocol_FailsAtStart_ListingRegisteredNames()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "ehco",
        });

        Assert.Contains("Transport:Endpoints:tcp:Protocol 'ehco' is not a registered protocol. Registered protocols: echo.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingUrlAndProtocol_BothReportedInOneMessage()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:empty:Limits:MaxConcurrentConnections"] = "0",
        });

        Assert.Contains("Transport:Endpoints:empty:Url is missing", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Endpoints:empty:Protocol is missing", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Endpoints:empty:Limits:MaxConcurrentConnections must be a positive number (was 0)", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MaxOutboxSize", "0", "Transport:Registry:MaxOutboxSize is 0; it must be at least 1 (bytes).")]
    [InlineData("SlowConsumerPolicy", "9", "Transport:Registry:SlowConsumerPolicy is '9'; accepted: Disconnect, Drop, Wait.")]
    public async Task BadRegistryOption_FailsAtStart_NamingKeyAndValue(string key, string value, string expected)
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
            ["Transport:Registry:" + key] = value,
        });

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoEndpointsOnOneAddress_FailAtStart_NamingBoth()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:a:Url"] = "tcp://127.0.0.1:7111",
            ["Transport:Endpoints:a:Protocol"] = "echo",
            ["Transport:Endpoints:b:Url"] = "tcp://127.0.0.1:7111",
            ["Transport:Endpoints:b:Protocol"] = "echo",
        });

        Assert.Contains("Transport:Endpoints:b:Url 'tcp://127.0.0.1:7111' is the same address as endpoint 'a'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NegativeGlobalLimits_FailAtStart()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Limits:MaxReadBufferSize"] = "-1",
            ["Transport:Limits:ShutdownTimeout"] = "-00:00:01",
        });

        Assert.Contains("Transport:Limits:MaxReadBufferSize must be 0 (no limit) or a positive number of bytes (was -1)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Limits:ShutdownTimeout must not be negative", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EndpointsFromConfiguration_AreBoundWithTheirLimits()
    {
        using IHost host = Build(new()
        {
            ["Transport:Limits:MaxConcurrentConnections"] = "5",
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
            ["Transport:Endpoints:mem:Url"] = "memory://config-test",
            ["Transport:Endpoints:mem:Protocol"] = "ECHO",
            ["Transport:Endpoints:udp:Url"] = "udp://127.0.0.1:0",
            ["Transport:Endpoints:udp:Protocol"] = "echo",
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            var bindings = host.Services.GetRequiredService<Transport.Hosting.ITransportServer>().Bindings;
            Assert.Equal(["mem", "tcp", "udp"], bindings.Select(b => b.Name));
            Assert.Equal("memory://config-test", bindings[0].Url);
            Assert.StartsWith("tcp://127.0.0.1:", bindings[1].Url, StringComparison.Ordinal);
            Assert.NotEqual("tcp://127.0.0.1:0", bindings[1].Url);
            Assert.StartsWith("udp://127.0.0.1:", bindings[2].Url, StringComparison.Ordinal);
            Assert.NotEqual("udp://127.0.0.1:0", bindings[2].Url);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    private static async Task<OptionsValidationException> StartFailsAsync(Dictionary<string, string?> settings)
    {
        using IHost host = Build(settings);
        return await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();
    }

    private static IHost Build(Dictionary<string, string?> settings)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
            .AddProtocol<EchoProtocol>("echo");
        return builder.Build();
    }
}
