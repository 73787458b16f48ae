using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>Connection middleware by name, per endpoint, from configuration or code: order, options, misconfiguration.</summary>
public sealed class ConnectionMiddlewareTests
{
    [Theory]
    [MemberData(nameof(TestTransports.Streams), MemberType = typeof(TestTransports))]
    public async Task Middleware_RunsAfterTls_InListOrder_ThenTheProtocol(TestTransport transport)
    {
        using var certificates = TestCertificates.Create();
        await using TransportTestServer server = await TransportTestServer.StartAsync(b => b.Transport
            .AddProtocol<EchoProtocol>("echo")
            .AddConnectionMiddleware("first", Tagging("first"))
            .AddConnectionMiddleware("second", Tagging("second"))
            .Listen(b.ListenUrl(transport), "echo", endpoint =>
            {
                endpoint.Tls = new TransportTlsOptions { Certificate = { Path = certificates.CertificatePath, KeyPath = certificates.KeyPath } };
                endpoint.AddMiddleware("second").AddMiddleware("first");
            }));

        await using ConnectionContext client = await server.Client.ConnectAsync(server.EndPoint, certificates.ClientOptions()).DefaultTimeout();
        await client.SendAsync("ping"u8.ToArray());

        // Each middleware writes its name and whether TLS already ran, before the protocol echoes.
        const string Expected = "second(tls) first(tls) ping";
        Assert.Equal(Expected, Encoding.ASCII.GetString(await client.ReceiveExactlyAsync(Expected.Length).DefaultTimeout()));
        Assert.Contains(server.Logs.Entries, e => e.Message == $"Endpoint '{server.Bindings[0].Name}' runs each connection through: tls → second → first → protocol 'echo'.");
    }

    [Fact]
    public async Task MiddlewareFromConfiguration_NamesAndObjectsWithOptions()
    {
        using IHost host = Build(new()
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:Middleware:0"] = "logging",
            ["Transport:Endpoints:main:Middleware:1:Name"] = "prefix",
            ["Transport:Endpoints:main:Middleware:1:Text"] = "hello ",
            ["Transport:Endpoints:main:Middleware:1:Repeat"] = "2",
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            var server = host.Services.GetRequiredService<ITransportServer>();
            await using ConnectionContext client = await host.Services.GetRequiredService<TransportConnectionFactory>().ConnectAsync(server.Bindings[0].EndPoint).DefaultTimeout();
            await client.SendAsync("x"u8.ToArray());
            Assert.Equal("hello hello x", Encoding.ASCII.GetString(await client.ReceiveExactlyAsync(13).DefaultTimeout()));
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task LoggingMiddleware_LogsEachReadAndWrite_AtDebug_WithTheBytes()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync(b => b.Transport
            .AddProtocol<EchoProtocol>("echo")
            .Listen(b.ListenUrl(TestTransport.Tcp), "echo", endpoint => endpoint.AddMiddleware("logging")));

        await using (ConnectionContext client = await server.ConnectAsync())
        {
            await client.SendAsync("hello"u8.ToArray());
            Assert.Equal("hello"u8.ToArray(), await client.ReceiveExactlyAsync(5).DefaultTimeout());
        }

        await TestTimeouts.UntilAsync(() => server.Logs.Entries.Any(e => e.Category == "Transport.Connections" && e.Message.Contains(" wrote 5 bytes", StringComparison.Ordinal)));
        Assert.Contains(server.Logs.Entries, e => e.Category == "Transport.Connections" && e.Level == LogLevel.Debug
            && e.Message.EndsWith(" read 5 bytes: 68 65 6C 6C 6F | hello", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UnknownName_FailsAtStart_NamingEndpointElementAndWhatIsRegistered()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:Middleware:0"] = "logging",
            ["Transport:Endpoints:main:Middleware:1"] = "loging",
            ["Transport:Endpoints:main:Middleware:2:Text"] = "no name",
        });

        Assert.Contains("Transport:Endpoints:main:Middleware:1 'loging' is not registered connection middleware. Registered middleware: logging, prefix, stream-only.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Endpoints:main:Middleware:2:Name is missing.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamOnlyMiddlewareOnUdp_FailsAtStart()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:dgram:Url"] = "udp://127.0.0.1:0",
            ["Transport:Endpoints:dgram:Protocol"] = "echo",
            ["Transport:Endpoints:dgram:Middleware:0"] = "stream-only",
        });

        Assert.Contains("Transport:Endpoints:dgram:Middleware:0 'stream-only' needs a byte stream and cannot serve the datagram endpoint 'udp://127.0.0.1:0'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadOptions_FailAtStart_NamingTheElement_BinderAndValidatorMessages()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
            ["Transport:Endpoints:main:Middleware:0:Name"] = "prefix",
            ["Transport:Endpoints:main:Middleware:0:Repeat"] = "twice",
            ["Transport:Endpoints:main:Middleware:1:Name"] = "prefix",
            ["Transport:Endpoints:main:Middleware:1:Text"] = "",
        });

        Assert.Contains("Transport:Endpoints:main:Middleware:0 ('prefix'): Failed to convert configuration value 'twice' at 'Transport:Endpoints:main:Middleware:0:Repeat'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Transport:Endpoints:main:Middleware:1 ('prefix'): Text must not be empty (was '').", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegisteringAnotherTypeUnderATakenName_Throws_AndTlsIsReserved()
    {
        ITransportBuilder transport = new ServiceCollection().AddTransport();
        Assert.Throws<InvalidOperationException>(() => transport.AddConnectionMiddleware<PrefixMiddleware, PrefixOptions>("logging", PrefixOptions.Bind));
        Assert.Throws<InvalidOperationException>(() => transport.AddConnectionMiddleware("tls", next => next));
        transport.AddConnectionMiddleware<PrefixMiddleware, PrefixOptions>("prefix", PrefixOptions.Bind);
        transport.AddConnectionMiddleware<PrefixMiddleware, PrefixOptions>("prefix", PrefixOptions.Bind);
    }

    private static Func<ConnectionDelegate, ConnectionDelegate> Tagging(string name) => next => async connection =>
    {
        string tls = connection.Features.Get<ITlsHandshakeFeature>() is null ? "plain" : "tls";
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"{name}({tls}) "));
        await next(connection);
    };

    private static Task<OptionsValidationException> StartFailsAsync(Dictionary<string, string?> settings) => ConfiguredHost.StartFailsAsync(settings, Register);

    private static IHost Build(Dictionary<string, string?> settings) => ConfiguredHost.Build(settings, Register);

    private static void Register(IServiceCollection services, ITransportBuilder transport)
    {
        services.AddSingleton<IValidateOptions<PrefixOptions>, PrefixOptionsValidator>();
        transport
            .AddConnectionMiddleware<PrefixMiddleware, PrefixOptions>("prefix", PrefixOptions.Bind)
            .AddConnectionMiddleware<StreamOnlyMiddleware, PrefixOptions>("stream-only", PrefixOptions.Bind);
    }

    public sealed class PrefixOptions
    {
        public string Text { get; set; } = "> ";

        public int Repeat { get; set; } = 1;

        public static void Bind(IConfiguration configuration, PrefixOptions options) => configuration.Bind(options);
    }

    private sealed class PrefixOptionsValidator : IValidateOptions<PrefixOptions>
    {
        public ValidateOptionsResult Validate(string? name, PrefixOptions options) =>
            options.Text.Length == 0 ? ValidateOptionsResult.Fail($"Text must not be empty (was '{options.Text}').") : ValidateOptionsResult.Success;
    }

    /// <summary>Writes its text before the protocol runs.</summary>
    public sealed class PrefixMiddleware : IConnectionMiddleware<PrefixOptions>
    {
        public ConnectionDelegate Create(ConnectionDelegate pipeline, PrefixOptions options, ConnectionMiddlewareContext context) => async connection =>
        {
            for (int i = 0; i < options.Repeat; i++)
            {
                await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(options.Text));
            }

            await pipeline(connection);
        };
    }

    [StreamTransportOnly]
    public sealed class StreamOnlyMiddleware : IConnectionMiddleware<PrefixOptions>
    {
        public ConnectionDelegate Create(ConnectionDelegate pipeline, PrefixOptions options, ConnectionMiddlewareContext context) => pipeline;
    }
}
