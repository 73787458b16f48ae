using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Protocols.Echo;
using Transport.Udp;
using Transport.Udp.Internal;

namespace Transport.Tests;

/// <summary>The UDP receive loop through errors the kernel can return (injected): it backs off and goes on, on the batched path.</summary>
public sealed class UdpReceiveFaultTests : IAsyncLifetime
{
    private const int ENOBUFS = 105;

    private readonly TestLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggerFactory;
    private readonly List<Task> _serving = [];
    private UdpConnectionListener? _listener;

    public UdpReceiveFaultTests()
    {
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
    }

    // xunit v2 calls IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable: the processes and hosts must go at the end of each test.
    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_listener is not null)
        {
            await _listener.UnbindAsync();
        }

        _loggerFactory.Dispose();
    }

    [Fact]
    public async Task ReceiveFailsWithENOBUFS_LoopBacksOffAndGoesOn_StillBatched_LoggedOnce()
    {
        int batched = 0;
        int faults = 0;
        UdpConnectionListener listener = await BindEchoAsync(isBatched =>
        {
            if (isBatched)
            {
                Interlocked.Increment(ref batched);
            }

            return Interlocked.Increment(ref faults) <= 3 ? ENOBUFS : 0;
        });
        using Socket peer = Peer();

        Assert.Equal("first", await EchoAsync(peer, listener, "first"));
        int batchedBefore = Volatile.Read(ref batched);
        Assert.Equal("second", await EchoAsync(peer, listener, "second"));
        await _logs.WaitForEventAsync(LogEvents.Udp.ReceiveRecovered, category: LogEvents.Udp.Category);

        TestLogEntry failing = Assert.Single(Entries(6));
        Assert.Equal(LogLevel.Error, failing.Level);
        Assert.Contains("NoBufferSpaceAvailable", failing.Message, StringComparison.Ordinal);
        Assert.Equal(2, Entries(8).Count());
        Assert.Contains("after 3 failed attempts", Assert.Single(Entries(9)).Message, StringComparison.Ordinal);
        Assert.Empty(Entries(7));
        if (OperatingSystem.IsLinux())
        {
            Assert.True(Volatile.Read(ref batched) > batchedBefore, "the receive loop left the recvmmsg path");
        }
    }

    [Fact]
    public async Task ExceptionInsideTheLoop_IsLoggedWithItsStack_AndTheLoopStartsOver()
    {
        int calls = 0;
        UdpConnectionListener listener = await BindEchoAsync(_ =>
            Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("a bug in the loop") : 0);
        using Socket peer = Peer();

        Assert.Equal("still served", await EchoAsync(peer, listener, "still served"));

        TestLogEntry failing = Assert.Single(Entries(6));
        Assert.IsType<InvalidOperationException>(failing.Exception);
    }

    private async Task<UdpConnectionListener> BindEchoAsync(Func<bool, int> fault)
    {
        var factory = new UdpTransportFactory(Options.Create(new UdpTransportOptions()), _loggerFactory);
        _listener = (UdpConnectionListener)await factory.BindAsync(new UdpEndPoint(new IPEndPoint(IPAddress.Loopback, 0)));
        _listener.ReceiveFault = fault;
        return _listener;
    }

    private static Socket Peer()
    {
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return peer;
    }

    /// <summary>Sends one datagram and returns the echo; the first datagram from the peer opens its session, served by echo.</summary>
    private async Task<string> EchoAsync(Socket peer, UdpConnectionListener listener, string text)
    {
        var target = (IPEndPoint)((UdpEndPoint)listener.EndPoint).Address;
        await peer.SendToAsync(System.Text.Encoding.ASCII.GetBytes(text), SocketFlags.None, target).DefaultTimeout();
        if (_serving.Count == 0)
        {
            ConnectionContext? session = await listener.AcceptAsync().DefaultTimeout();
            Assert.NotNull(session);
            _serving.Add(new EchoProtocol().OnConnectedAsync(session));
        }

        var buffer = new byte[100];
        int received = await peer.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().DefaultTimeout();
        return System.Text.Encoding.ASCII.GetString(buffer, 0, received);
    }

    private IEnumerable<TestLogEntry> Entries(int eventId) =>
        _logs.Entries.Where(e => e.EventId.Id == eventId && e.Category == "Transport.Udp");
}
