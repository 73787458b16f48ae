using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>The standard features of a socket connection, on both sides.</summary>
public sealed class ConnectionFeatureTests
{
    [Fact]
    public async Task SocketConnection_Features_AreTheConnectionItself_AndTheSameCollectionEachTime()
    {
        var factory = new SocketTransportFactory(Options.Create(new SocketTransportOptions()));
        IConnectionListener listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0)).AsTask().DefaultTimeout();
        try
        {
            ConnectionContext client = await factory.ConnectAsync(listener.EndPoint).AsTask().DefaultTimeout();
            ConnectionContext? server = await listener.AcceptAsync().AsTask().DefaultTimeout();
            Assert.NotNull(server);

            foreach (ConnectionContext connection in new[] { client, server })
            {
                Assert.Same(connection.Features, connection.Features);
                Assert.Same(connection, connection.Features.Get<IConnectionIdFeature>());
                Assert.Same(connection, connection.Features.Get<IConnectionTransportFeature>());
                Assert.Same(connection, connection.Features.Get<IConnectionItemsFeature>());
                Assert.Same(connection, connection.Features.Get<IConnectionLifetimeFeature>());
                Assert.Same(connection, connection.Features.Get<IConnectionEndPointFeature>());
                Assert.Same(connection, connection.Features.Get<IConnectionLifetimeNotificationFeature>());
                // The transport's block pool, which TLS's decrypted pipes buffer in too (as over Kestrel's pool).
                Assert.Equal(4096, connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool.MaxBufferSize);
                connection.Abort();
                await connection.DisposeAsync().AsTask().DefaultTimeout();
            }
        }
        finally
        {
            await listener.UnbindAsync().AsTask().DefaultTimeout();
        }
    }
}
