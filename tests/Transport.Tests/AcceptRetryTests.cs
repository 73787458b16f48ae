using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;
using Transport.Hosting;
using Transport.Sockets;
using Transport.Sockets.Internal;

namespace Transport.Tests;

/// <summary>
/// Accept loops that never end on an error: the socket transport's listener on a real socket the OS makes fail, and the
/// engine's loop over a transport that throws. All on a fake clock.
/// </summary>
public sealed class AcceptRetryTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly TestLoggerProvider _logs = new();
    private readonly BlockMemoryPool _pool = new();

    public void Dispose() => _pool.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SocketListener_AcceptFails_RetriesWithGrowingDelay_LogsOnce_CountsEach_AndRecoversWhenTheSocketListensAgain(bool ioThreads)
    {
        using ServiceProvider services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        using var errors = new MetricCollector<long>(meterFactory, "Transport", "transport.socket.accept.errors");
        SocketConnectionListener listener = BindSocketListener(meterFactory, ioThreads);
        ValueTask<ConnectionContext?> accepting = listener.AcceptAsync();

        // Linux: a listening socket that is shut down fails every accept with EINVAL until it listens again.
        listener.ListenSocket!.Shutdown(SocketShutdown.Receive);
        await _logs.WaitForEventAsync(LogEvents.Sockets.AcceptFailing, category: LogEvents.Sockets.Category);
        await TestTimeouts.UntilAsync(() => AdvanceThen(() => Logged(9)));
        Assert.True(listener.AcceptFailing); // what the HAProxy agent and the systemd watchdog read
        listener.ListenSocket.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        // Listening again after the shutdown binds a new ephemeral port (the first was port 0 too); Socket caches the old one.
        using (var fresh = new Socket(new SafeSocketHandle(listener.ListenSocket.SafeHandle.DangerousGetHandle(), ownsHandle: false)))
        {
            await client.ConnectAsync(fresh.LocalEndPoint!).DefaultTimeout();
        }

        await TestTimeouts.UntilAsync(() => AdvanceThen(() => accepting.IsCompleted));

        await using ConnectionContext? connection = await accepting;
        Assert.NotNull(connection);
        Assert.False(listener.AcceptFailing);
        Assert.Empty(Entries(10));
        _time.Advance(TimeSpan.FromSeconds(2));
        TestLogEntry failing = Assert.Single(Entries(8));
        Assert.Equal(LogLevel.Error, failing.Level);
        Assert.Contains("InvalidArgument", failing.Message, StringComparison.Ordinal);
        Assert.Null(failing.Exception);
        long failures = errors.GetMeasurementSnapshot().EvaluateAsCounter();
        Assert.True(failures >= 2, $"{failures} failures counted");
        Assert.All(errors.GetMeasurementSnapshot().Select(m => m.Tags), t => Assert.Equal(("InvalidArgument", "tcp", (object)((IPEndPoint)listener.EndPoint).Port),
            (t["error.type"], t["network.transport"], t["server.port"])));
        TestLogEntry recovered = Assert.Single(Entries(10));
        Assert.Equal(LogLevel.Warning, recovered.Level);
        Assert.Contains($"again after {failures} failed attempts", recovered.Message, StringComparison.Ordinal);
        await listener.UnbindAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SocketListener_UnbindWhileWaitingForAConnection_TheAcceptReturnsNull(bool ioThreads)
    {
        SocketConnectionListener listener = BindSocketListener(null, ioThreads);
        ValueTask<ConnectionContext?> accepting = listener.AcceptAsync();
        Assert.False(accepting.IsCompleted);

        await listener.UnbindAsync();

        Assert.Null(await accepting.DefaultTimeout());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SocketListener_Unbind_EndsTheBackoffAtOnce_WithoutTheClockMoving(bool ioThreads)
    {
        SocketConnectionListener listener = BindSocketListener(null, ioThreads);
        ValueTask<ConnectionContext?> accepting = listener.AcceptAsync();
        listener.ListenSocket!.Shutdown(SocketShutdown.Receive);
        await _logs.WaitForEventAsync(LogEvents.Sockets.AcceptFailing, category: LogEvents.Sockets.Category);

        await listener.UnbindAsync();

        Assert.Null(await accepting.DefaultTimeout());
        Assert.Empty(Entries(9));
    }

    [Fact]
    public async Task SocketListener_CallerCancelsDuringBackoff_AcceptThrowsOperationCanceled()
    {
        SocketConnectionListener listener = BindSocketListener(null);
        using var cancel = new CancellationTokenSource();
        ValueTask<ConnectionContext?> accepting = listener.AcceptAsync(cancel.Token);
        listener.ListenSocket!.Shutdown(SocketShutdown.Receive);
        await _logs.WaitForEventAsync(LogEvents.Sockets.AcceptFailing, category: LogEvents.Sockets.Category);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await accepting).DefaultTimeout();
        await listener.UnbindAsync();
    }

    [Fact]
    public async Task Engine_TransportThrowsFromAccept_RetriesLogsOnceCountsEach_AndServesTheNextConnection()
    {
        string url = "memory://accept-retry-" + Guid.NewGuid().ToString("N");
        var served = new TaskCompletionSource<ConnectionContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        var unbound = new TaskCompletionSource<ConnectionContext?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var connection = new DefaultConnectionContext("after-the-faults");
        int calls = 0;
        IConnectionListener listener = Substitute.For<IConnectionListener>();
        listener.EndPoint.Returns(new MemoryEndPoint(url[9..]));
        listener.AcceptAsync(Arg.Any<CancellationToken>()).Returns(_ => Interlocked.Increment(ref calls) switch
        {
            1 => throw new IOException("a user's transport failed synchronously"),
            2 or 3 => ValueTask.FromException<ConnectionContext?>(new IOException("a user's transport failed asynchronously")),
            4 => new ValueTask<ConnectionContext?>(connection),
            _ => new ValueTask<ConnectionContext?>(unbound.Task),
        });
        listener.UnbindAsync(Arg.Any<CancellationToken>()).Returns(_ =>
        {
            unbound.TrySetResult(null);
            return ValueTask.CompletedTask;
        });
        using IHost host = BuildHost(url, listener, served);
        using var errors = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.accept.errors");
        await host.StartAsync().DefaultTimeout();

        await _logs.WaitForEventAsync(LogEvents.Hosting.AcceptFailing, category: LogEvents.Hosting.Category);
        await TestTimeouts.UntilAsync(() => AdvanceThen(() => served.Task.IsCompleted));

        Assert.Same(connection, await served.Task);
        TestLogEntry failing = Assert.Single(Entries(11));
        Assert.Equal(LogLevel.Error, failing.Level);
        Assert.IsType<IOException>(failing.Exception);
        Assert.Equal(2, Entries(14).Count());
        Assert.Equal(3, errors.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.All(errors.GetMeasurementSnapshot().Select(m => m.Tags), t => Assert.Equal(("System.IO.IOException", url), (t["error.type"], t["transport.endpoint"])));
        await TestTimeouts.UntilAsync(() => Volatile.Read(ref calls) == 5);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Contains("again after 3 failed attempts", Assert.Single(Entries(15)).Message, StringComparison.Ordinal);
        await host.StopAsync().DefaultTimeout();
    }

    [Fact]
    public async Task Engine_TransportThatAlwaysThrows_StopsPromptly_WithoutTheClockMoving()
    {
        string url = "memory://accept-broken-" + Guid.NewGuid().ToString("N");
        int calls = 0;
        IConnectionListener listener = Substitute.For<IConnectionListener>();
        listener.EndPoint.Returns(new MemoryEndPoint(url[9..]));
        listener.AcceptAsync(Arg.Any<CancellationToken>()).Returns(_ =>
        {
            Interlocked.Increment(ref calls);
            return ValueTask.FromException<ConnectionContext?>(new InvalidOperationException("broken for good"));
        });
        using IHost host = BuildHost(url, listener, new TaskCompletionSource<ConnectionContext>());
        await host.StartAsync().DefaultTimeout();
        await _logs.WaitForEventAsync(LogEvents.Hosting.AcceptFailing, category: LogEvents.Hosting.Category);

        await host.StopAsync().DefaultTimeout();

        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.Contains(_logs.Entries, e => e.EventId.Id == 12);
    }

    /// <summary>A listener on loopback; with <paramref name="ioThreads"/>, one that accepts on the transport's own I/O threads (where they exist).</summary>
    private SocketConnectionListener BindSocketListener(IMeterFactory? meterFactory, bool ioThreads = false)
    {
        ILogger logger = _logs.CreateLogger("Transport.Sockets");
        Transport.Sockets.Internal.Epoll.EpollEngine? engine = ioThreads && Transport.Sockets.Internal.Epoll.EpollNative.IsSupported
            ? Transport.Sockets.Internal.Epoll.EpollEngine.GetShared(0, logger)
            : null;
        var listener = new SocketConnectionListener(new IPEndPoint(IPAddress.Loopback, 0), new SocketTransportOptions(), new TransportListenOptions(),
            _pool, logger, new SocketMetrics(meterFactory), _time,
            new DrainDeadlines(TimeProvider.System, TimeSpan.FromSeconds(5), logger), engine);
        listener.Bind();
        return listener;
    }

    private IHost BuildHost(string url, IConnectionListener listener, TaskCompletionSource<ConnectionContext> served)
    {
        var transport = Substitute.For<ITransportFactory>();
        transport.CanBind(Arg.Any<EndPoint>()).Returns(true);
        transport.BindAsync(Arg.Any<EndPoint>(), Arg.Any<TransportListenOptions>(), Arg.Any<CancellationToken>())
            .Returns(new ValueTask<IConnectionListener>(listener));
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<TimeProvider>(_time);
        builder.Services.AddSingleton(transport);
        builder.Services.AddSingleton(served);
        builder.Services.AddTransport().AddProtocol<RecordingProtocol>("recording").Listen(url, "recording");
        return builder.Build();
    }

    /// <summary>Moves the fake clock on a little (the loop waits on it), then checks.</summary>
    private bool AdvanceThen(Func<bool> condition)
    {
        _time.Advance(TimeSpan.FromMilliseconds(10));
        return condition();
    }

    private bool Logged(int eventId) => Entries(eventId).Any();

    private IEnumerable<TestLogEntry> Entries(int eventId) =>
        _logs.Entries.Where(e => e.EventId.Id == eventId && e.Category is "Transport.Sockets" or "Transport.Hosting");

    private sealed class RecordingProtocol(TaskCompletionSource<ConnectionContext> served) : ConnectionHandler
    {
        public override Task OnConnectedAsync(ConnectionContext connection)
        {
            served.TrySetResult(connection);
            return Task.CompletedTask;
        }
    }
}
