using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Transport.Testing;
using Transport.Udp;
using Transport.Udp.Internal;

namespace Transport.Tests;

/// <summary>
/// What a UDP endpoint tells the process's idle memory collector: a burst of datagrams, or of sessions ending, is
/// traffic (no collection may pause it); the period after it, with a trickle at most, is quiet, and then the memory the
/// burst left can go back to the OS.
/// </summary>
public sealed class UdpIdleMemoryTests : IAsyncLifetime
{
    private UdpConnectionListener? _listener;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.UnbindAsync();
        }
    }

    [Fact]
    public async Task ABurstOfDatagrams_IsTraffic_AndThePeriodAfterIt_IsQuiet()
    {
        UdpConnectionListener listener = await BindAsync();
        using Socket peer = Peer();
        var target = (IPEndPoint)((UdpEndPoint)listener.EndPoint).Address;
        Assert.True(listener.TakeQuiet()); // nothing yet

        int burst = UdpConnectionListener.QuietDatagrams + 500;
        for (int i = 0; i < burst; i++)
        {
            await peer.SendToAsync(new byte[] { 1, 2, 3 }, SocketFlags.None, target).DefaultTimeout();
        }

        await TestTimeouts.UntilAsync(() => listener.PeriodDatagrams >= UdpConnectionListener.QuietDatagrams);
        Assert.False(listener.TakeQuiet());
        Assert.True(listener.TakeQuiet()); // a period with no datagram after it
    }

    [Fact]
    public async Task ManySessionsEnding_IsTraffic_AFewAreATrickle()
    {
        UdpConnectionListener listener = await BindAsync();
        var target = (IPEndPoint)((UdpEndPoint)listener.EndPoint).Address;
        int peers = UdpConnectionListener.QuietEndedSessions + 6;
        var sessions = new List<ConnectionContext>();
        var sockets = new List<Socket>();
        try
        {
            for (int i = 0; i < peers; i++)
            {
                Socket peer = Peer();
                sockets.Add(peer);
                await peer.SendToAsync(new byte[] { 7 }, SocketFlags.None, target).DefaultTimeout();
                ConnectionContext? session = await listener.AcceptAsync().AsTask().DefaultTimeout();
                Assert.NotNull(session);
                sessions.Add(session);
            }

            Assert.True(listener.TakeQuiet()); // a few dozen datagrams: a trickle

            await sessions[0].DisposeAsync();
            Assert.True(listener.TakeQuiet()); // one session ending (a health check's) is a trickle too

            foreach (ConnectionContext session in sessions.Skip(1))
            {
                await session.DisposeAsync();
            }

            Assert.False(listener.TakeQuiet()); // the end of a burst: its garbage is judged at the next quiet period
            Assert.True(listener.TakeQuiet());
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private async Task<UdpConnectionListener> BindAsync()
    {
        // A long idle timeout: the endpoint's own sweep stays out of the test's periods.
        var options = new UdpTransportOptions { SessionIdleTimeout = TimeSpan.FromHours(1), MaxSessions = 10_000 };
        var factory = new UdpTransportFactory(Options.Create(options), NullLoggerFactory.Instance);
        _listener = (UdpConnectionListener)await factory.BindAsync(new UdpEndPoint(new IPEndPoint(IPAddress.Loopback, 0)));
        return _listener;
    }

    private static Socket Peer()
    {
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return peer;
    }
}
