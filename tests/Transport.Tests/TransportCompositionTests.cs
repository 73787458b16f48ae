using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Transport.Hosting;
using Transport.Memory;
using Transport.Protocols.Echo;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>The engine composes the transports registered in DI; it does not hard-wire them.</summary>
public sealed class TransportCompositionTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ApplicationsTransportForAScheme_WinsOverTheBuiltInOne_WhicheverIsRegisteredFirst(bool registeredFirst)
    {
        var mine = new RecordingTransport();
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        if (registeredFirst)
        {
            builder.Services.AddSingleton<ITransportFactory>(mine);
        }

        builder.Services.AddTransport().AddProtocol<EchoProtocol>("echo").Listen("tcp://127.0.0.1:0", "echo");
        if (!registeredFirst)
        {
            builder.Services.AddSingleton<ITransportFactory>(mine);
        }

        using IHost host = builder.Build();
        await host.StartAsync().DefaultTimeout();
        try
        {
            EndPoint bound = host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint;
            await using ConnectionContext client = await host.Services.GetRequiredService<IConnectionFactory>().ConnectAsync(bound).DefaultTimeout();
            await client.SendAsync("hi"u8.ToArray());

            Assert.Equal("hi"u8.ToArray(), await client.ReceiveExactlyAsync(2));
            Assert.Equal((1, 1), (mine.Binds, mine.Connects));
        }
        finally
        {
            await host.StopAsync().DefaultTimeout();
        }
    }

    [Fact]
    public async Task AddTransportCore_HasOnlyTheTransportsTheHostAdds()
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMemoryTransport();
        builder.Services.AddTransportCore().AddProtocol<EchoProtocol>("echo")
            .Listen("memory://core", "echo")
            .Listen("udp://127.0.0.1:0", "echo");
        using IHost host = builder.Build();

        OptionsValidationException ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync()).DefaultTimeout();

        Assert.Equal("Transport:Endpoints:udp://127.0.0.1:0:Url 'udp://127.0.0.1:0': no registered transport can listen on UdpEndPoint.", ex.Message);
    }

    /// <summary>The application's own TCP transport: the socket transport underneath, counting what the engine asks of it.</summary>
    private sealed class RecordingTransport : ITransportFactory
    {
        private readonly SocketTransportFactory _inner = new(Options.Create(new SocketTransportOptions()));

        public int Binds { get; private set; }

        public int Connects { get; private set; }

        public string Name => "mine";

        public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

        public bool CanConnect(EndPoint endpoint) => endpoint is IPEndPoint;

        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
            BindAsync(endpoint, new TransportListenOptions(), cancellationToken);

        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, TransportListenOptions options, CancellationToken cancellationToken = default)
        {
            Binds++;
            return _inner.BindAsync(endpoint, options, cancellationToken);
        }

        public ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
        {
            Connects++;
            return _inner.ConnectAsync(endpoint, cancellationToken);
        }
    }
}
