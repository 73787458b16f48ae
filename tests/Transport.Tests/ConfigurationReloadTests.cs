using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Diagnostics.Metrics;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests;

/// <summary>
/// Configuration reload without a restart, one kind of change per test, each with a connection open across it: what the
/// open connection keeps, what a new one gets, and what happens to the listener.
/// </summary>
public sealed class ConfigurationReloadTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("transport-reload-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task ProtocolChange_OpenConnectionKeepsItsProtocol_NewConnectionsGetTheNewOne()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");
        await using ConnectionContext before = await host.ConnectAsync(address);
        Assert.Equal("hello", await RoundTripAsync(before, "hello", 5));

        Assert.Equal("applied", await host.ReloadAsync(s => s["Transport:Endpoints:main:Protocol"] = "upper"));

        Assert.Equal(address, host.Address("main"));
        await using ConnectionContext after = await host.ConnectAsync(address);
        Assert.Equal("HELLO", await RoundTripAsync(after, "hello", 5));
        Assert.Equal("still", await RoundTripAsync(before, "still", 5));
        Assert.Equal("main", Assert.Single(host.Server.Bindings).Name);
        Assert.Equal("upper", host.Server.Bindings[0].Protocol);
        Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 90 && e.Message == "Reloaded Transport configuration (configuration changed): ~main");
    }

    [Fact]
    public async Task LimitsChange_AppliesToNewConnections_OpenOnesCarryOn()
    {
        Dictionary<string, string?> settings = Endpoint("main", "tcp://127.0.0.1:0", "echo");
        settings["Transport:Endpoints:main:Limits:MaxConcurrentConnections"] = "1";
        await using ReloadHost host = await ReloadHost.StartAsync(settings);
        EndPoint address = host.Address("main");
        await using ConnectionContext first = await host.ConnectAsync(address);
        Assert.Equal("one", await RoundTripAsync(first, "one", 3));
        await using (ConnectionContext refused = await host.ConnectAsync(address))
        {
            await AssertClosedByServerAsync(refused);
        }

        Assert.Equal("applied", await host.ReloadAsync(s => s["Transport:Endpoints:main:Limits:MaxConcurrentConnections"] = "2"));

        await using ConnectionContext second = await host.ConnectAsync(address);
        Assert.Equal("two", await RoundTripAsync(second, "two", 3));
        Assert.Equal("one", await RoundTripAsync(first, "one", 3));
        Assert.Equal((long?)2, host.Server.Listeners.Single().MaxConnections);
    }

    [Fact]
    public async Task MiddlewareChange_AppliesToNewConnections_OpenOnesKeepTheirPipeline()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");
        await using ConnectionContext before = await host.ConnectAsync(address);
        Assert.Equal("x", await RoundTripAsync(before, "x", 1));

        Assert.Equal("applied", await host.ReloadAsync(s => s["Transport:Endpoints:main:Middleware:0"] = "greet"));

        await using ConnectionContext after = await host.ConnectAsync(address);
        Assert.Equal("hi x", await RoundTripAsync(after, "x", 4));
        Assert.Equal("y", await RoundTripAsync(before, "y", 1));
        Assert.Contains(host.Logs.Entries, e => e.Message == "Endpoint 'main' runs each connection through: greet → protocol 'echo'.");
    }

    [Fact]
    public async Task TlsChange_NewConnectionsHandshake_TheOpenPlainConnectionCarriesOn()
    {
        using var certificates = TestCertificates.Create();
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");
        await using ConnectionContext plain = await host.ConnectAsync(address);
        Assert.Equal("plain", await RoundTripAsync(plain, "plain", 5));

        Assert.Equal("applied", await host.ReloadAsync(s =>
        {
            s["Transport:Endpoints:main:Tls:Certificate:Path"] = certificates.CertificatePath;
            s["Transport:Endpoints:main:Tls:Certificate:KeyPath"] = certificates.KeyPath;
        }));

        await using ConnectionContext secure = await host.Client.ConnectAsync(address, certificates.ClientOptions()).DefaultTimeout();
        Assert.Equal("secure", await RoundTripAsync(secure, "secure", 6));
        Assert.Equal("again", await RoundTripAsync(plain, "again", 5));
    }

    [Fact]
    public async Task AddressChange_BindsTheNewAddressBeforeReleasingTheOld_WhoseConnectionFinishes()
    {
        string socket = Path.Combine(_directory, "main.sock");
        Dictionary<string, string?> settings = Endpoint("main", "tcp://127.0.0.1:0", "echo");
        settings["Transport:Limits:ShutdownTimeout"] = "00:01:00";
        await using ReloadHost host = await ReloadHost.StartAsync(settings);
        EndPoint old = host.Address("main");
        ConnectionContext before = await host.ConnectAsync(old);
        Assert.Equal("old", await RoundTripAsync(before, "old", 3));

        Assert.Equal("applied", await host.ReloadAsync(s => s["Transport:Endpoints:main:Url"] = "unix:" + socket));

        Assert.Equal(new UnixDomainSocketEndPoint(socket).ToString(), host.Address("main").ToString());
        await using ConnectionContext after = await host.ConnectAsync(host.Address("main"));
        Assert.Equal("new", await RoundTripAsync(after, "new", 3));
        await Assert.ThrowsAsync<ConnectionRefusedException>(async () => await host.ConnectAsync(old));

        // Make before break: the new address listened before the old one stopped.
        List<TestLogEntry> entries = [.. host.Logs.Entries];
        int listening = entries.FindIndex(e => e.EventId.Id == 1 && e.Message.StartsWith("Listening on unix:", StringComparison.Ordinal));
        int stopped = entries.FindIndex(e => e.EventId.Id == 12 && e.Message.StartsWith("Stopped listening on tcp://", StringComparison.Ordinal));
        Assert.InRange(listening, 0, stopped - 1);

        // The connection accepted on the old address is served until it ends, by its own choice.
        Assert.Equal("still", await RoundTripAsync(before, "still", 5));
        Assert.Equal(2, host.Server.ActiveConnections);
        await before.DisposeAsync();
        await TestTimeouts.UntilAsync(() => host.Server.ActiveConnections == 1);
    }

    [Fact]
    public async Task RemovedEndpoint_StopsAccepting_AndItsOpenConnectionDrains()
    {
        Dictionary<string, string?> settings = Endpoint("a", "tcp://127.0.0.1:0", "echo");
        Endpoint("b", "tcp://127.0.0.1:0", "echo", settings);
        settings["Transport:Limits:ShutdownTimeout"] = "00:01:00";
        await using ReloadHost host = await ReloadHost.StartAsync(settings);
        EndPoint b = host.Address("b");
        ConnectionContext open = await host.ConnectAsync(b);
        Assert.Equal("b", await RoundTripAsync(open, "b", 1));

        Assert.Equal("applied", await host.ReloadAsync(s =>
        {
            s.Remove("Transport:Endpoints:b:Url");
            s.Remove("Transport:Endpoints:b:Protocol");
        }));

        Assert.Equal("a", Assert.Single(host.Server.Bindings).Name);
        await Assert.ThrowsAsync<ConnectionRefusedException>(async () => await host.ConnectAsync(b));
        Assert.Equal("bb", await RoundTripAsync(open, "bb", 2));
        await open.DisposeAsync();
        await TestTimeouts.UntilAsync(() => host.Server.ActiveConnections == 0);
        Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 90 && e.Message.EndsWith("): -b", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AddedEndpoint_Binds_AndServes()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("a", "tcp://127.0.0.1:0", "echo"));
        await using ConnectionContext open = await host.ConnectAsync(host.Address("a"));

        Assert.Equal("applied", await host.ReloadAsync(s => Endpoint("c", "tcp://127.0.0.1:0", "upper", s)));

        Assert.Equal(new[] { "a", "c" }, host.Server.Bindings.Select(b => b.Name));
        await using ConnectionContext added = await host.ConnectAsync(host.Address("c"));
        Assert.Equal("NEW", await RoundTripAsync(added, "new", 3));
        Assert.Equal("a", await RoundTripAsync(open, "a", 1));
        Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 90 && e.Message.EndsWith("): +c", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FailedBind_RollsThatEndpointBack_AndAppliesTheOthers()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");
        await using ConnectionContext open = await host.ConnectAsync(address);

        Assert.Equal("rolled_back", await host.ReloadAsync(s =>
        {
            s["Transport:Endpoints:main:Url"] = $"tcp://127.0.0.1:{port}";
            s["Transport:Endpoints:main:Protocol"] = "upper";
            Endpoint("other", "tcp://127.0.0.1:0", "echo", s);
        }));

        TestLogEntry warning = Assert.Single(host.Logs.Entries, e => e.EventId.Id == 93);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains($"Transport:Endpoints:main ('tcp://127.0.0.1:{port}')", warning.Message, StringComparison.Ordinal);
        Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 90 && e.Message.EndsWith("): +other (kept running: main)", StringComparison.Ordinal));

        // The endpoint runs as before: same address, same protocol; the other change was applied.
        Assert.Equal(address, host.Address("main"));
        await using ConnectionContext next = await host.ConnectAsync(address);
        Assert.Equal("same", await RoundTripAsync(next, "same", 4));
        Assert.Equal("open", await RoundTripAsync(open, "open", 4));
        Assert.Equal(new[] { "main", "other" }, host.Server.Bindings.Select(b => b.Name));

        // Once the port is free, the same configuration applies.
        taken.Close();
        Assert.Equal("applied", await host.ReloadAsync(_ => { }, signal: true));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, port), host.Address("main"));
    }

    [Fact]
    public async Task InvalidChange_IsLoggedCountedAndIgnored_TheRunningConfigurationStays()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");
        await using ConnectionContext open = await host.ConnectAsync(address);

        Assert.Equal("invalid", await host.ReloadAsync(s =>
        {
            s["Transport:Endpoints:main:Protocol"] = "upper";
            s["Transport:Endpoints:main:Limits:MaxConcurrentConnections"] = "-1";
            Endpoint("added", "tcp://127.0.0.1:0", "echo", s);
        }));

        TestLogEntry error = Assert.Single(host.Logs.Entries, e => e.EventId.Id == 92);
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains("Transport:Endpoints:main:Limits:MaxConcurrentConnections must be a positive number (was -1)", error.Message, StringComparison.Ordinal);
        Assert.Equal("main", Assert.Single(host.Server.Bindings).Name);
        await using ConnectionContext next = await host.ConnectAsync(address);
        Assert.Equal("echo", await RoundTripAsync(next, "echo", 4));
        Assert.Equal("open", await RoundTripAsync(open, "open", 4));

        // Fixed, the same change applies.
        Assert.Equal("applied", await host.ReloadAsync(s => s.Remove("Transport:Endpoints:main:Limits:MaxConcurrentConnections")));
        Assert.Equal(new[] { "added", "main" }, host.Server.Bindings.Select(b => b.Name));
    }

    [Fact]
    public async Task UdpSession_SurvivesAChangeThatKeepsTheBind_NewPeersGetTheNewProtocol()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("udp", "udp://127.0.0.1:0", "count"));
        EndPoint address = host.Address("udp");
        await using ConnectionContext session = await host.ConnectAsync(address);
        Assert.Equal("1", await RoundTripAsync(session, "a", 1));

        Assert.Equal("applied", await host.ReloadAsync(s => s["Transport:Endpoints:udp:Protocol"] = "echo"));

        // The same server-side session (its count goes on), on the protocol it started with.
        Assert.Equal("2", await RoundTripAsync(session, "b", 1));
        await using ConnectionContext peer = await host.ConnectAsync(address);
        Assert.Equal("new", await RoundTripAsync(peer, "new", 3));
        Assert.Equal(address, host.Address("udp"));
    }

    [Fact]
    public async Task UnchangedReload_ChangesNothing_AndSaysSoAtDebug()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");

        Assert.Equal("unchanged", await host.ReloadAsync(s => s["Unrelated"] = "1"));

        Assert.Equal(LogLevel.Debug, Assert.Single(host.Logs.Entries, e => e.EventId.Id == 91).Level);
        Assert.DoesNotContain(host.Logs.Entries, e => e.EventId.Id == 90);
        Assert.Equal(address, host.Address("main"));
    }

    [Fact]
    public async Task ChangesInQuickSuccession_AreAppliedOnce()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));

        // As a file watcher reports one save: several change notifications at once.
        host.Configuration.Change(s => s["Transport:Endpoints:main:Protocol"] = "upper");
        host.Configuration.Change(_ => { });
        host.Configuration.Change(_ => { });
        await host.Logs.WaitForEventAsync(90);

        Assert.Single(host.Logs.Entries, e => e.EventId.Id is 90 or 91);
        Assert.Single(host.Reloads.GetMeasurementSnapshot());
    }

    [Fact]
    public async Task Sighup_RereadsTheConfiguration_AndReloads()
    {
        await using ReloadHost host = await ReloadHost.StartAsync(Endpoint("main", "tcp://127.0.0.1:0", "echo"));
        EndPoint address = host.Address("main");

        // Edited without a change notification, as a file on a system without file watching: only SIGHUP makes it read.
        host.Configuration.Store(s => s["Transport:Endpoints:main:Protocol"] = "upper");
        int seen = host.Reloads.GetMeasurementSnapshot().Count;
        Assert.Equal(0, Kill(Environment.ProcessId, 1));
        await host.Reloads.WaitForMeasurementsAsync(seen + 1, TestTimeouts.Default);

        Assert.Equal("signal", host.Reloads.LastMeasurement!.Tags["transport.config.reload.trigger"]);
        Assert.Contains(host.Logs.Entries, e => e.EventId.Id == 90 && e.Message == "Reloaded Transport configuration (SIGHUP): ~main");
        await using ConnectionContext after = await host.ConnectAsync(address);
        Assert.Equal("UP", await RoundTripAsync(after, "up", 2));
    }

    [Fact]
    public async Task EchoHost_OnSighup_ReloadsAndKeepsServing()
    {
        await using ExampleProcess host = ExampleProcess.Start("EchoHost",
            "--Transport:Endpoints:tcp:Url=tcp://127.0.0.1:0",
            "--Transport:Endpoints:unix:Url=unix:" + Path.Combine(_directory, "echo.sock"),
            "--Transport:Endpoints:udp:Url=udp://127.0.0.1:0");
        Match tcp = await host.WaitForLineAsync(@"Listening on tcp://127\.0\.0\.1:(\d+)");
        await host.WaitForLineAsync("Listening on unix:");

        host.Signal("HUP");
        await host.WaitForLineAsync(@"Reloaded Transport configuration \(SIGHUP\): no changes");

        Assert.False(host.HasExited);
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, int.Parse(tcp.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).DefaultTimeout();
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("after"u8.ToArray()).DefaultTimeout();
            byte[] answer = new byte[5];
            await stream.ReadExactlyAsync(answer).DefaultTimeout();
            Assert.Equal("after"u8.ToArray(), answer);
        }

        Assert.Equal(0, await host.StopAsync());
    }

    [Fact]
    public async Task AppsettingsFileChange_IsApplied()
    {
        string file = Path.Combine(_directory, "appsettings.json");
        await File.WriteAllTextAsync(file, """{ "Transport": { "Endpoints": { "main": { "Url": "tcp://127.0.0.1:0", "Protocol": "echo" } } } }""");
        await using ReloadHost host = await ReloadHost.StartAsync(new(), b => b.AddJsonFile(file, optional: false, reloadOnChange: true));
        EndPoint address = host.Address("main");

        await File.WriteAllTextAsync(file, """{ "Transport": { "Endpoints": { "main": { "Url": "tcp://127.0.0.1:0", "Protocol": "upper" } } } }""");
        await host.Logs.WaitForEventAsync(90);

        await using ConnectionContext after = await host.ConnectAsync(address);
        Assert.Equal("FILE", await RoundTripAsync(after, "file", 4));
    }

    [Fact]
    public void ReplacedGeneration_ReleasesItsResources_WhenItsLastConnectionEnds()
    {
        var resource = new CountingDisposable();
        var generation = new Transport.Hosting.Internal.EndpointGeneration("main", _ => Task.CompletedTask, "echo", null, TimeSpan.FromSeconds(1),
            endpoint: null, [resource], Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var listener = generation.ForAddress(new IPEndPoint(IPAddress.Loopback, 1));
        Assert.True(listener.TryEnter());
        Assert.True(listener.TryEnter());

        generation.Retire();
        listener.Leave();
        Assert.Equal(0, resource.Disposed);
        listener.Leave();
        Assert.Equal(1, resource.Disposed);

        // Released: a connection read just before the swap is turned to the current generation instead.
        Assert.False(listener.TryEnter());
        generation.Retire();
        Assert.Equal(1, resource.Disposed);
    }

    private sealed class CountingDisposable : IDisposable
    {
        public int Disposed { get; private set; }

        public void Dispose() => Disposed++;
    }

    private static Dictionary<string, string?> Endpoint(string name, string url, string protocol, Dictionary<string, string?>? settings = null)
    {
        settings ??= new(StringComparer.OrdinalIgnoreCase);
        settings[$"Transport:Endpoints:{name}:Url"] = url;
        settings[$"Transport:Endpoints:{name}:Protocol"] = protocol;
        return settings;
    }

    private static async Task<string> RoundTripAsync(ConnectionContext connection, string text, int answerLength)
    {
        await connection.SendAsync(Encoding.ASCII.GetBytes(text)).DefaultTimeout();
        return Encoding.ASCII.GetString(await connection.ReceiveExactlyAsync(answerLength).DefaultTimeout());
    }

    private static async Task AssertClosedByServerAsync(ConnectionContext connection)
    {
        try
        {
            Assert.Empty(await connection.ReceiveToEndAsync().DefaultTimeout());
        }
        catch (ConnectionResetException)
        {
            // Closed with a reset: closed all the same.
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int Kill(int pid, int signal);

    /// <summary>A started host on a configuration the test changes, with its log and its reload counter.</summary>
    private sealed class ReloadHost : IAsyncDisposable
    {
        private ReloadHost(IHost host, ReloadableConfiguration configuration, TestLoggerProvider logs)
        {
            Host = host;
            Configuration = configuration;
            Logs = logs;
            Server = host.Services.GetRequiredService<Transport.Hosting.Internal.TransportServer>();
            Client = host.Services.GetRequiredService<TransportConnectionFactory>();
            Reloads = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), "Transport", "transport.config.reloads");
        }

        public IHost Host { get; }

        public ReloadableConfiguration Configuration { get; }

        public TestLoggerProvider Logs { get; }

        public Transport.Hosting.Internal.TransportServer Server { get; }

        public TransportConnectionFactory Client { get; }

        public MetricCollector<long> Reloads { get; }

        public static async Task<ReloadHost> StartAsync(Dictionary<string, string?> settings, Action<IConfigurationBuilder>? files = null)
        {
            HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            var configuration = new ReloadableConfiguration(settings);
            ((IConfigurationBuilder)builder.Configuration).Add(configuration);
            files?.Invoke(builder.Configuration);
            var logs = new TestLoggerProvider();
            builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
            builder.Services.AddTransport(builder.Configuration.GetSection("Transport"))
                .AddProtocol<EchoProtocol>("echo")
                .AddProtocol<UpperProtocol>("upper")
                .AddProtocol<CountingProtocol>("count")
                .AddConnectionMiddleware("greet", next => async connection =>
                {
                    await connection.Transport.Output.WriteAsync("hi "u8.ToArray());
                    await next(connection);
                });
            IHost host = builder.Build();
            await host.StartAsync().DefaultTimeout();
            return new ReloadHost(host, configuration, logs);
        }

        public EndPoint Address(string endpoint) => Server.Bindings.Single(b => b.Name == endpoint).EndPoint;

        public async Task<ConnectionContext> ConnectAsync(EndPoint endpoint) => await Client.ConnectAsync(endpoint).DefaultTimeout();

        /// <summary>Changes the configuration (or, with <paramref name="signal"/>, sends SIGHUP) and returns the reload's result.</summary>
        public async Task<string> ReloadAsync(Action<Dictionary<string, string?>> edit, bool signal = false)
        {
            int seen = Reloads.GetMeasurementSnapshot().Count;
            if (signal)
            {
                Configuration.Store(edit);
                Assert.Equal(0, Kill(Environment.ProcessId, 1));
            }
            else
            {
                Configuration.Change(edit);
            }

            await Reloads.WaitForMeasurementsAsync(seen + 1, TestTimeouts.Default);
            return (string)Reloads.LastMeasurement!.Tags["transport.config.reload.result"]!;
        }

        public async ValueTask DisposeAsync()
        {
            await Host.StopAsync().DefaultTimeout();
            Reloads.Dispose();
            Host.Dispose();
        }
    }

    /// <summary>Values the test edits: <see cref="Change"/> as a watched file that changed, <see cref="Store"/> as one nobody watches.</summary>
    private sealed class ReloadableConfiguration : ConfigurationProvider, IConfigurationSource
    {
        private readonly Dictionary<string, string?> _stored;

        public ReloadableConfiguration(Dictionary<string, string?> initial)
        {
            _stored = new(initial, StringComparer.OrdinalIgnoreCase);
            Load();
        }

        public IConfigurationProvider Build(IConfigurationBuilder builder) => this;

        public override void Load()
        {
            lock (_stored)
            {
                Data = new Dictionary<string, string?>(_stored, StringComparer.OrdinalIgnoreCase);
            }
        }

        public void Store(Action<Dictionary<string, string?>> edit)
        {
            lock (_stored)
            {
                edit(_stored);
            }
        }

        public void Change(Action<Dictionary<string, string?>> edit)
        {
            Store(edit);
            Load();
            OnReload();
        }
    }

    /// <summary>Echoes in capitals: tells a connection served by it from one served by echo.</summary>
    public sealed class UpperProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            while (true)
            {
                ReadResult result = await connection.Transport.Input.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                {
                    connection.Transport.Output.Write(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(segment.Span).ToUpperInvariant()));
                }

                if (!result.Buffer.IsEmpty)
                {
                    await connection.Transport.Output.FlushAsync();
                }

                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Answers each read with how many reads this connection has had: tells one UDP session from a new one.</summary>
    public sealed class CountingProtocol : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            int count = 0;
            while (true)
            {
                ReadResult result = await connection.Transport.Input.ReadAsync();
                if (!result.Buffer.IsEmpty)
                {
                    count++;
                    await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(count.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }

                connection.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }
}
