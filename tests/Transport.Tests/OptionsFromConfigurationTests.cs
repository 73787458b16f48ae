using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Protocols.Echo;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>
/// Every option under <c>Transport</c> comes from configuration, takes effect, and a bad one (value, type or key)
/// fails the host at start with one message naming the full key.
/// </summary>
public sealed class OptionsFromConfigurationTests
{
    [ToolFact("ss")]
    public async Task SocketsBacklog_FromConfiguration_IsTheKernelsListenBacklog()
    {
        string ss = Tool.RequireOnPath("ss");
        using IHost host = Build(new()
        {
            ["Transport:Sockets:Backlog"] = "7",
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
        });
        await host.StartAsync().DefaultTimeout();
        try
        {
            int port = ((IPEndPoint)host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint).Port;

            // For a listening socket, ss's Send-Q column is the backlog the listen() call asked for.
            var listing = await Tool.RunAsync(ss, ["-ltnH", $"sport = :{port}"]);

            Match row = Regex.Match(System.Text.Encoding.ASCII.GetString(listing.Output), @"LISTEN\s+\d+\s+(\d+)");
            Assert.True(row.Success, "ss did not list the listener: " + System.Text.Encoding.ASCII.GetString(listing.Output) + listing.Error);
            Assert.Equal("7", row.Groups[1].Value);
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Theory]
    [InlineData("false", false)]
    [InlineData(null, true)]
    public async Task SocketsNoDelay_FromConfiguration_IsSetOnTheAcceptedSocket(string? configured, bool expected)
    {
        var seen = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        var settings = new Dictionary<string, string?>
        {
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "probe",
        };
        if (configured is not null)
        {
            settings["Transport:Sockets:NoDelay"] = configured;
        }

        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddSingleton(new SocketProbe(seen));
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport")).AddProtocol<SocketProbe>("probe");
        using IHost host = builder.Build();
        await host.StartAsync().DefaultTimeout();
        try
        {
            var endpoint = (IPEndPoint)host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(endpoint).DefaultTimeout();

            Assert.Equal(expected, await seen.Task.DefaultTimeout());
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task UdpSessionIdleTimeout_FromConfiguration_EndsAnIdleSession()
    {
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // Far below the 60 s default: the session can only end this soon if the configured value took effect.
            ["Transport:Udp:SessionIdleTimeout"] = "00:00:00.200",
            ["Transport:Endpoints:udp:Url"] = "udp://127.0.0.1:0",
            ["Transport:Endpoints:udp:Protocol"] = "idle",
        });
        builder.Services.AddSingleton(new EndOfInputProbe(ended));
        builder.Services.AddTransport(builder.Configuration.GetSection("Transport")).AddProtocol<EndOfInputProbe>("idle");
        using IHost host = builder.Build();
        await host.StartAsync().DefaultTimeout();
        try
        {
            EndPoint endpoint = ((UdpEndPoint)host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint).Address;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            await client.SendToAsync("hello"u8.ToArray(), endpoint).DefaultTimeout();

            await ended.Task.DefaultTimeout();
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Theory]
    [InlineData("Transport:Sockets:Backlog", "0", "Transport:Sockets:Backlog is 0; it must be from 1 to 65535.")]
    [InlineData("Transport:Sockets:MemoryPoolTrimInterval", "00:00:00", "Transport:Sockets:MemoryPoolTrimInterval is 00:00:00; it must be positive.")]
    [InlineData("Transport:Sockets:IoThreadCount", "-1", "Transport:Sockets:IoThreadCount is -1; it must be from 0 (the runtime's choice) to 256.")]
    [InlineData("Transport:Sockets:DrainTimeout", "-00:00:01", "Transport:Sockets:DrainTimeout is -00:00:01; it must not be negative.")]
    [InlineData("Transport:Udp:MaxSessions", "0", "Transport:Udp:MaxSessions is 0; it must be at least 1.")]
    [InlineData("Transport:Udp:MaxDatagramSize", "70000", "Transport:Udp:MaxDatagramSize is 70000; it must be from 1 to 65527 (bytes).")]
    [InlineData("Transport:Udp:MaxQueuedDatagrams", "0", "Transport:Udp:MaxQueuedDatagrams is 0; it must be at least 1.")]
    [InlineData("Transport:Udp:SessionIdleTimeout", "00:00:00", "Transport:Udp:SessionIdleTimeout is 00:00:00; it must be positive.")]
    [InlineData("Transport:Udp:SocketReceiveBufferSize", "-1", "Transport:Udp:SocketReceiveBufferSize is -1; it must be a positive number of bytes.")]
    public async Task BadTransportOption_FailsAtStart_NamingTheFullKeyTheValueAndWhatIsAccepted(string key, string value, string expected)
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            [key] = value,
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
        });

        Assert.Equal(expected, ex.Message);
    }

    [Theory]
    [InlineData("Transport:Limits:MaxConcurrentConnections", "abc", "Transport:Limits:MaxConcurrentConnections is 'abc'; it must be a whole number.")]
    [InlineData("Transport:Endpoints:tcp:Limits:MaxReadBufferSize", "1MB", "Transport:Endpoints:tcp:Limits:MaxReadBufferSize is '1MB'; it must be a whole number.")]
    [InlineData("Transport:Limits:ShutdownTimeout", "soon", "Transport:Limits:ShutdownTimeout is 'soon'; it must be a time span such as 00:00:10.")]
    [InlineData("Transport:Sockets:NoDelay", "maybe", "Transport:Sockets:NoDelay is 'maybe'; it must be true or false.")]
    [InlineData("Transport:Udp:MaxSessions", "lots", "Transport:Udp:MaxSessions is 'lots'; it must be a whole number.")]
    [InlineData("Transport:Registry:SlowConsumerPolicy", "Slow", "Transport:Registry:SlowConsumerPolicy is 'Slow'; it must be one of Disconnect, Drop, Wait.")]
    public async Task WrongType_FailsAtStart_WithTheSameKindOfMessage(string key, string value, string expected)
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            [key] = value,
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
        });

        Assert.Equal(expected, ex.Message);
    }

    [Fact]
    public async Task UnknownKeys_AreWarnings_NamingTheKeyAndTheClosestKnownOne()
    {
        var logs = new TestLoggerProvider();
        using IHost host = Build(new()
        {
            ["Transport:Endpionts:x:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Limits:MaxConcurentConnections"] = "5",
            ["Transport:Sockets:Backlogg"] = "5",
            ["Transport:Endpoints:tcp:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:tcp:Protocol"] = "echo",
            ["Transport:Endpoints:tcp:Protocl"] = "echo",
        }, logs);
        await host.StartAsync().DefaultTimeout();
        await host.StopAsync().DefaultTimeout();

        string[] warnings = [.. logs.At(LogLevel.Warning).Select(e => e.Message)];
        Assert.Contains("Transport:Endpionts is not a known key; did you mean Transport:Endpoints?", warnings);
        Assert.Contains("Transport:Limits:MaxConcurentConnections is not a known key; did you mean Transport:Limits:MaxConcurrentConnections?", warnings);
        Assert.Contains("Transport:Sockets:Backlogg is not a known key; did you mean Transport:Sockets:Backlog?", warnings);
        Assert.Contains("Transport:Endpoints:tcp:Protocl is not a known key; did you mean Transport:Endpoints:tcp:Protocol?", warnings);
        Assert.Equal(4, warnings.Length);
    }

    [Fact]
    public async Task UnknownKeys_Error_FailsAtStart()
    {
        OptionsValidationException ex = await StartFailsAsync(new()
        {
            ["Transport:UnknownKeys"] = "Error",
            ["Transport:Endpionts:x:Url"] = "tcp://127.0.0.1:0",
        });

        Assert.Equal("Transport:Endpionts is not a known key; did you mean Transport:Endpoints? (Transport:UnknownKeys is Error.)", ex.Message);
    }

    [Fact]
    public async Task AddSocketTransport_WithConfiguration_BindsAndValidatesItsSection()
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Net:Tcp:Backlog"] = "-3" });
        builder.Services.AddSocketTransport(builder.Configuration.GetSection("Net:Tcp"));
        using IHost host = builder.Build();

        OptionsValidationException ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();

        Assert.Equal("Net:Tcp:Backlog is -3; it must be from 1 to 65535.", ex.Message);
    }

    private static async Task<OptionsValidationException> StartFailsAsync(Dictionary<string, string?> settings)
    {
        using IHost host = Build(settings);
        return await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();
    }

    private static IHost Build(Dictionary<string, string?> settings, TestLoggerProvider? logs = null)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddTransport(builder.Configuration.GetSection("Transport")).AddProtocol<EchoProtocol>("echo");
        return builder.Build();
    }

    /// <summary>Reports whether the accepted socket has Nagle's algorithm off.</summary>
    private sealed class SocketProbe(TaskCompletionSource<bool> seen) : ConnectionHandler
    {
        public override Task OnConnectedAsync(ConnectionContext connection)
        {
            Socket? socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
            if (socket is null)
            {
                seen.TrySetException(new InvalidOperationException("the connection has no IConnectionSocketFeature"));
            }
            else
            {
                seen.TrySetResult(socket.NoDelay);
            }

            return Task.CompletedTask;
        }
    }

    /// <summary>Reads until the session's input ends (the idle timeout), then reports it.</summary>
    private sealed class EndOfInputProbe(TaskCompletionSource ended) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            while (true)
            {
                System.IO.Pipelines.ReadResult result = await connection.Transport.Input.ReadAsync();
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    ended.TrySetResult();
                    return;
                }
            }
        }
    }
}
