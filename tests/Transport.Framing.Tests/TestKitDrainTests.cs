using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Framing;
using Transport.Hosting;
using Transport.Sockets;

namespace Transport.Framing.Tests;

/// <summary>
/// The test kit's stopping socket host does not wait the socket transport's 5-second drain for a test client that
/// stays open; a test can still ask for the production value.
/// </summary>
public sealed class TestKitDrainTests
{
    [Theory]
    [InlineData(TestTransport.Tcp)]
    [InlineData(TestTransport.Unix)]
    public async Task StoppingWithAClientStillOpen_EndsTheDrainAtTheKitsShortTimeout(TestTransport transport)
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<LineEcho>(transport);
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("hi\n"u8.ToArray());
        Assert.Equal("hi\r\n"u8.ToArray(), await client.ReceiveExactlyAsync(4));

        Assert.Equal(TransportTestServer.DefaultDrainTimeout, DrainTimeout(server));
        Assert.True(TransportTestServer.DefaultDrainTimeout < TimeSpan.FromSeconds(1));

        // The protocol ends on the close request; the client neither reads the FIN nor closes.
        await server.StopAsync();

        Assert.Contains(server.Logs.At(LogLevel.Debug), e => e.Category.StartsWith("Transport.Sockets", StringComparison.Ordinal)
            && e.Message.Contains("did not close within the drain timeout", StringComparison.Ordinal));
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task TestCanSetTheProductionDrainTimeoutBack()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<LineEcho>(TestTransport.Tcp,
            b => b.Host.Services.Configure<SocketTransportOptions>(o => o.DrainTimeout = TimeSpan.FromSeconds(5)));

        Assert.Equal(TimeSpan.FromSeconds(5), DrainTimeout(server));
    }

    [Fact]
    public async Task ProtocolIsRegisteredUnderTheDocumentedName()
    {
        await using TransportTestServer server = await TransportTestServer.StartAsync<LineEcho>(TestTransport.Memory,
            b => b.Transport.Listen(b.ListenUrl(TestTransport.Tcp), TransportTestServer.ProtocolName));
        EndPoint tcp = server.Bindings.Single(b => b.EndPoint is IPEndPoint).EndPoint;
        await using ConnectionContext client = await server.Client.ConnectAsync(tcp).DefaultTimeout();

        await client.SendAsync("second endpoint\n"u8.ToArray());

        Assert.Equal("second endpoint\r\n"u8.ToArray(), await client.ReceiveExactlyAsync(17));
    }

    private static TimeSpan DrainTimeout(TransportTestServer server) =>
        server.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.DrainTimeout;

    private sealed class LineEcho : FramedProtocol<ReadOnlySequence<byte>>
    {
        private static readonly LineFramer Lines = new(maxMessageSize: 1024);

        protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Lines;

        protected override ValueTask OnMessageAsync(ConnectionContext connection, ReadOnlySequence<byte> line)
        {
            Lines.Write(connection.Transport.Output, line.ToArray());
            return default;
        }
    }
}
