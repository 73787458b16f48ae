using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NSubstitute;
using NSubstitute.ExceptionExtensions;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>The server's start and stop logic, with fake transports where a real one cannot produce the fault.</summary>
public sealed class HostLogicTests
{
    [Fact]
    public async Task BindFailsOnSecondEndpoint_FirstIsUnbound_AndStartFailsNamingTheEndpoint()
    {
        var first = Substitute.For<IConnectionListener>();
        first.EndPoint.Returns(new MemoryEndPoint("a"));
        first.AcceptAsync(Arg.Any<CancellationToken>()).Returns(new ValueTask<ConnectionContext?>((ConnectionContext?)null));
        var transport = Substitute.For<ITransportFactory>();
        transport.CanBind(Arg.Any<EndPoint>()).Returns(true);
        transport.BindAsync(new MemoryEndPoint("a"), Arg.Any<TransportListenOptions>(), Arg.Any<CancellationToken>())
            .Returns(new ValueTask<IConnectionListener>(first));
        transport.BindAsync(new MemoryEndPoint("b"), Arg.Any<TransportListenOptions>(), Arg.Any<CancellationToken>())
            .Throws(new AddressInUseException("memory://b is already in use by another listener."));

        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton(transport);
        builder.Services.AddTransport()
            .AddProtocol<EchoProtocol>("echo")
            .Listen("memory://a", "echo")
            .Listen("memory://b", "echo");
        using IHost host = builder.Build();

        AddressInUseException ex = await Assert.ThrowsAsync<AddressInUseException>(() => host.StartAsync()).DefaultTimeout();

        Assert.Contains("Transport:Endpoints:memory://b", ex.Message, StringComparison.Ordinal);
        Assert.Contains("already in use", ex.Message, StringComparison.Ordinal);
        await first.Received(1).UnbindAsync(Arg.Any<CancellationToken>());
        Assert.Empty(host.Services.GetRequiredService<ITransportServer>().Bindings);
    }

    [Fact]
    public async Task PortAlreadyInUse_StartFailsNamingEndpointAndAddress()
    {
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        squatter.Listen();
        int port = ((IPEndPoint)squatter.LocalEndPoint!).Port;

        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddTransport(o =>
        {
            o.Endpoints["first"] = new TransportEndpointOptions { Url = "memory://port-in-use-first", Protocol = "echo" };
            o.Endpoints["tcp"] = new TransportEndpointOptions { Url = $"tcp://127.0.0.1:{port}", Protocol = "echo" };
        }).AddProtocol<EchoProtocol>("echo");
        using IHost host = builder.Build();

        AddressInUseException ex = await Assert.ThrowsAsync<AddressInUseException>(() => host.StartAsync()).DefaultTimeout();

        Assert.Contains("Transport:Endpoints:tcp", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"tcp://127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
        // The endpoint bound before the failure was released: its name can be bound again.
        var memory = host.Services.GetRequiredService<Transport.Memory.MemoryTransportFactory>();
        await using IConnectionListener again = await memory.BindAsync(new MemoryEndPoint("port-in-use-first")).DefaultTimeout();
    }

    [Fact]
    public async Task SecondBindOfMemoryName_ThrowsAddressInUse()
    {
        var memory = new Transport.Memory.MemoryTransportFactory();
        await using IConnectionListener first = await memory.BindAsync(new MemoryEndPoint("twice")).DefaultTimeout();

        await Assert.ThrowsAsync<AddressInUseException>(async () => await memory.BindAsync(new MemoryEndPoint("twice")));
    }

    [Fact]
    public async Task ConnectToNothing_ThrowsConnectionRefused_ForEveryTransport()
    {
        await using ServiceProvider services = new ServiceCollection().AddLogging().AddTransport().Services.BuildServiceProvider();
        var client = services.GetRequiredService<TransportConnectionFactory>();
        using var unused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        unused.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)unused.LocalEndPoint!).Port;

        await Assert.ThrowsAsync<ConnectionRefusedException>(async () => await client.ConnectAsync($"tcp://127.0.0.1:{port}"));
        await Assert.ThrowsAsync<ConnectionRefusedException>(async () => await client.ConnectAsync("unix:/tmp/transport-tests/no-such.sock"));
        await Assert.ThrowsAsync<ConnectionRefusedException>(async () => await client.ConnectAsync("memory://nobody"));
    }

    [Fact]
    public void AddProtocol_SameNameTwice_SameTypeIsIdempotent_OtherTypeThrows()
    {
        var services = new ServiceCollection();
        ITransportBuilder builder = services.AddTransport().AddProtocol<EchoProtocol>("echo").AddProtocol<EchoProtocol>("ECHO");
        services.AddTransport();

        Assert.Single(services, d => d.ServiceType == typeof(EchoProtocol));
        // The server and the systemd notifier, each once.
        Assert.Equal(2, services.Count(d => d.ServiceType == typeof(IHostedService)));
        InvalidOperationException ex = Assert.Throws<InvalidOperationException>(() => builder.AddProtocol<OtherProtocol>("echo"));
        Assert.Contains("'echo' is already registered", ex.Message, StringComparison.Ordinal);
    }

    private sealed class OtherProtocol : ConnectionHandler
    {
        public override Task OnConnectedAsync(ConnectionContext connection) => Task.CompletedTask;
    }
}
