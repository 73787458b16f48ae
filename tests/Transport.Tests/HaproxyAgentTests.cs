using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// The <c>haproxy-agent</c> protocol and the drain phase of shutdown, in process: what HAProxy's agent-check reads at
/// each point of the server's life, and the stop's phases, on a fake clock for the drain delay.
/// </summary>
public sealed class HaproxyAgentTests
{
    private const int DrainDelayStarted = 70;
    private const int StoppedAccepting = 71;
    private const int Stopped = 72;
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task Agent_AnswersUpReadyWithTheFreeShareOfTheLimit_AndMaxconn()
    {
        await using TransportTestServer server = await StartAsync(drainDelay: null);
        Assert.Equal("up ready 100% maxconn:4\n", await AskAgentAsync(server));

        await using ConnectionContext first = await ConnectServedAsync(server);
        Assert.Equal("up ready 75% maxconn:4\n", await AskAgentAsync(server));
        await using ConnectionContext second = await ConnectServedAsync(server);
        await using ConnectionContext third = await ConnectServedAsync(server);
        await using ConnectionContext fourth = await ConnectServedAsync(server);
        Assert.Equal("up ready 0% maxconn:4\n", await AskAgentAsync(server));
    }

    [Fact]
    public async Task Stop_ReportsDrainWhileStillServing_ForTheDrainDelay_ThenStopsAccepting_ThenDrains_EachPhaseMeasured()
    {
        await using TransportTestServer server = await StartAsync(drainDelay: TimeSpan.FromSeconds(30));
        using var phases = new MetricCollector<double>(server.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.shutdown.phase.duration");
        ConnectionContext open = await ConnectServedAsync(server);

        Task stopping = server.StopAsync();
        await server.Logs.WaitForEventAsync(DrainDelayStarted, category: LogEvents.Hosting.Category);

        // Drain is reported, and the work endpoint still serves new connections: the balancer has not noticed yet.
        Assert.Equal("drain\n", await AskAgentAsync(server));
        await using (ConnectionContext late = await ConnectServedAsync(server))
        {
            Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == StoppedAccepting);
        }

        _time.Advance(TimeSpan.FromSeconds(30));
        await server.Logs.WaitForEventAsync(StoppedAccepting, category: LogEvents.Hosting.Category);
        await Assert.ThrowsAsync<ConnectionRefusedException>(() => server.Client.ConnectAsync(WorkEndPoint(server)).AsTask());
        Assert.DoesNotContain(server.Logs.Entries, e => e.EventId.Id == Stopped);

        // The open connection finishes (its client closes); then the stop completes.
        await open.DisposeAsync();
        await stopping.DefaultTimeout();
        await server.Logs.WaitForEventAsync(Stopped, category: LogEvents.Hosting.Category);
        Assert.Equal(["drain_delay", "unbind", "drain"],
            phases.GetMeasurementSnapshot().Select(m => (string)m.Tags["transport.shutdown.phase"]!));
    }

    [Fact]
    public async Task Agent_AnswersDownStarting_UntilEveryHostedServiceHasStarted()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new TestLoggerProvider();
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        builder.Services.AddTransport(o => o.Endpoints["agent"] = new() { Url = "tcp://127.0.0.1:0", Protocol = "haproxy-agent" })
            .AddHaproxyAgent();
        // Registered after the server: the host starts it once the server accepts, and it takes its time (warming a cache).
        builder.Services.AddSingleton<IHostedService>(new SlowStart(release.Task));
        using IHost host = builder.Build();
        Task starting = host.StartAsync();
        await logs.WaitForEventAsync(1, category: LogEvents.Hosting.Category);
        var client = host.Services.GetRequiredService<TransportConnectionFactory>();
        System.Net.EndPoint agent = host.Services.GetRequiredService<ITransportServer>().Bindings[0].EndPoint;

        Assert.Equal("down#starting\n", await AskAsync(client, agent));
        release.SetResult();
        await starting.DefaultTimeout();
        Assert.Equal("up ready 100%\n", await AskAsync(client, agent));
        await host.StopAsync().DefaultTimeout();
    }

    [Fact]
    public async Task Agent_AnswersDownWhileAWorkEndpointCannotAccept_AndUpOnceItAcceptsAgain()
    {
        // The work endpoint's transport fails every accept (out of descriptors, say) until released.
        var failing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var unbound = new TaskCompletionSource<ConnectionContext?>(TaskCreationOptions.RunContinuationsAsynchronously);
        IConnectionListener listener = Substitute.For<IConnectionListener>();
        listener.EndPoint.Returns(new MemoryEndPoint("agent-work-" + Guid.NewGuid().ToString("N")));
        listener.AcceptAsync(Arg.Any<CancellationToken>()).Returns(_ => failing.Task.IsCompleted
            ? new ValueTask<ConnectionContext?>(unbound.Task)
            : ValueTask.FromException<ConnectionContext?>(new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.TooManyOpenSockets)));
        listener.UnbindAsync(Arg.Any<CancellationToken>()).Returns(_ =>
        {
            unbound.TrySetResult(null);
            return ValueTask.CompletedTask;
        });
        var transport = Substitute.For<ITransportFactory>();
        transport.CanBind(Arg.Any<System.Net.EndPoint>()).Returns(c => c.Arg<System.Net.EndPoint>() is MemoryEndPoint);
        transport.BindAsync(Arg.Any<System.Net.EndPoint>(), Arg.Any<TransportListenOptions>(), Arg.Any<CancellationToken>())
            .Returns(new ValueTask<IConnectionListener>(listener));

        await using TransportTestServer server = await TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Host.Services.AddSingleton(transport);
            b.Transport.AddProtocol<EchoProtocol>("echo").AddHaproxyAgent(o => o.Endpoints.Add("work"));
            b.Host.Services.Configure<TransportServerOptions>(o =>
            {
                o.Endpoints["agent"] = new() { Url = "tcp://127.0.0.1:0", Protocol = "haproxy-agent" };
                o.Endpoints["work"] = new() { Url = "memory://" + ((MemoryEndPoint)listener.EndPoint).Name, Protocol = "echo" };
            });
        });
        await server.Logs.WaitForEventAsync(LogEvents.Hosting.AcceptFailing, category: LogEvents.Hosting.Category);

        Assert.Equal("down#accept-failing\n", await AskAgentAsync(server));

        // Descriptors are back: the next attempt waits for a connection, which is the endpoint accepting again.
        failing.SetResult();
        string answer;
        int asked = 0;
        do
        {
            _time.Advance(TimeSpan.FromMilliseconds(50)); // the loop's backoff waits on the fake clock
            answer = await AskAgentAsync(server);
        }
        while (answer != "up ready 100%\n" && ++asked < 400);

        Assert.Equal("up ready 100%\n", answer);
    }

    [Fact]
    public async Task AgentEndpointsNamingAnUnknownEndpoint_FailsAtStart_NamingTheKey()
    {
        var ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:Endpoints:agent:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:agent:Protocol"] = "haproxy-agent",
        }, (services, transport) => transport.AddHaproxyAgent(o => o.Endpoints.Add("nosuch")));

        Assert.Contains("Transport:HaproxyAgent:Endpoints:0 is 'nosuch', which is not a configured endpoint (configured: agent).", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NegativeDrainDelay_FailsAtStart()
    {
        var ex = await ConfiguredHost.StartFailsAsync(new()
        {
            ["Transport:DrainDelay"] = "-00:00:01",
            ["Transport:Endpoints:main:Url"] = "tcp://127.0.0.1:0",
            ["Transport:Endpoints:main:Protocol"] = "echo",
        });

        Assert.Contains("Transport:DrainDelay must not be negative (was -00:00:01)", ex.Message, StringComparison.Ordinal);
    }

    private Task<TransportTestServer> StartAsync(TimeSpan? drainDelay) =>
        TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton<TimeProvider>(_time);
            b.Transport.AddProtocol<EchoProtocol>("echo").AddHaproxyAgent(o => o.Endpoints.Add("work"));
            b.Host.Services.Configure<TransportServerOptions>(o =>
            {
                o.DrainDelay = drainDelay;
                o.Endpoints["agent"] = new() { Url = "tcp://127.0.0.1:0", Protocol = "haproxy-agent" };
                o.Endpoints["work"] = new() { Url = "tcp://127.0.0.1:0", Protocol = "echo", Limits = { MaxConcurrentConnections = 4 } };
            });
        });

    private static System.Net.EndPoint WorkEndPoint(TransportTestServer server) => server.Bindings.Single(b => b.Name == "work").EndPoint;

    /// <summary>Connects to the work endpoint and waits for an echo, so the connection is counted.</summary>
    private static async Task<ConnectionContext> ConnectServedAsync(TransportTestServer server)
    {
        ConnectionContext client = await server.Client.ConnectAsync(WorkEndPoint(server)).AsTask().DefaultTimeout();
        await client.SendAsync("x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await client.ReceiveExactlyAsync(1).DefaultTimeout());
        return client;
    }

    private static Task<string> AskAgentAsync(TransportTestServer server) =>
        AskAsync(server.Client, server.Bindings.Single(b => b.Name == "agent").EndPoint);

    /// <summary>What HAProxy's agent check does: connect, read to the end.</summary>
    private static async Task<string> AskAsync(TransportConnectionFactory client, System.Net.EndPoint agent)
    {
        await using ConnectionContext connection = await client.ConnectAsync(agent).AsTask().DefaultTimeout();
        return Encoding.ASCII.GetString(await connection.ReceiveToEndAsync().DefaultTimeout());
    }

    private sealed class SlowStart(Task released) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => released;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
