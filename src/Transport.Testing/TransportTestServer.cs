using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Sockets;

namespace Transport.Testing;

/// <summary>
/// A started generic host running the Transport server with your protocol, on a free port or a temporary
/// socket path, and a client that shares its service provider (so <c>memory://</c> works too).
/// Dispose it to stop the host and remove its temporary files.
/// </summary>
public sealed class TransportTestServer : IAsyncDisposable
{
    private readonly string _tempDirectory;
    private int _stopped;

    private TransportTestServer(IHost host, string tempDirectory, TestLoggerProvider logs)
    {
        Host = host;
        _tempDirectory = tempDirectory;
        Logs = logs;
        Client = host.Services.GetRequiredService<TransportConnectionFactory>();
    }

    /// <summary>The running host.</summary>
    public IHost Host { get; }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services => Host.Services;

    /// <summary>Everything the host logged, from Debug up.</summary>
    public TestLoggerProvider Logs { get; }

    /// <summary>The client side: connects to any URL or endpoint.</summary>
    public TransportConnectionFactory Client { get; }

    /// <summary>Every bound address, in endpoint-name order.</summary>
    public IReadOnlyList<TransportBinding> Bindings => Host.Services.GetRequiredService<ITransportServer>().Bindings;

    /// <summary>The first bound address (port 0 resolved).</summary>
    public EndPoint EndPoint => Bindings[0].EndPoint;

    /// <summary>
    /// The name <see cref="StartAsync{TProtocol}(TestTransport, Action{TransportTestServerBuilder}?)"/> registers the
    /// protocol under and names in its endpoint: <c>protocol-under-test</c>. Use it to add endpoints for the same protocol.
    /// </summary>
    public const string ProtocolName = "protocol-under-test";

    /// <summary>
    /// How long the test host's socket connections wait for a client that stays open after the protocol closed:
    /// 250 milliseconds, instead of the socket transport's 5 seconds, so a test that stops the server before it
    /// disposes its client does not wait. Set <c>SocketTransportOptions.DrainTimeout</c> in the configure callback
    /// to test the production value.
    /// </summary>
    public static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Starts a host that serves <typeparamref name="TProtocol"/> on <paramref name="transport"/>, registered as
    /// <see cref="ProtocolName"/>.
    /// </summary>
    /// <typeparam name="TProtocol">The protocol under test.</typeparam>
    /// <param name="transport">The transport to listen on.</param>
    /// <param name="configure">Optional: more protocols, endpoints, limits or services.</param>
    /// <returns>The started server.</returns>
    public static Task<TransportTestServer> StartAsync<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TProtocol>(TestTransport transport, Action<TransportTestServerBuilder>? configure = null)
        where TProtocol : ConnectionHandler =>
        StartAsync(builder =>
        {
            builder.Transport.AddProtocol<TProtocol>(ProtocolName).Listen(builder.ListenUrl(transport), ProtocolName);
            configure?.Invoke(builder);
        });

    /// <summary>Starts a host configured entirely by <paramref name="configure"/>.</summary>
    /// <param name="configure">Registers protocols and endpoints (use <see cref="TransportTestServerBuilder.ListenUrl"/> for free addresses).</param>
    /// <returns>The started server.</returns>
    public static async Task<TransportTestServer> StartAsync(Action<TransportTestServerBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        string temp = Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);
        var logs = new TestLoggerProvider();
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        ITransportBuilder transport = builder.Services.AddTransport();
        // Before the test's own configuration, so that a test can set the production value back.
        builder.Services.Configure<SocketTransportOptions>(o => o.DrainTimeout = DefaultDrainTimeout);
        configure(new TransportTestServerBuilder(builder, transport, temp));
        IHost host = builder.Build();
        try
        {
            await host.StartAsync().DefaultTimeout().ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            DeleteDirectory(temp);
            throw;
        }

        return new TransportTestServer(host, temp, logs);
    }

    /// <summary>Connects to the <paramref name="binding"/>-th bound address.</summary>
    /// <param name="binding">Index into <see cref="Bindings"/>.</param>
    /// <returns>The client connection.</returns>
    public async Task<ConnectionContext> ConnectAsync(int binding = 0) =>
        await Client.ConnectAsync(Bindings[binding].EndPoint).DefaultTimeout().ConfigureAwait(false);

    /// <summary>Stops the host (graceful shutdown, bounded by its limits).</summary>
    /// <returns>A task that completes when the host has stopped.</returns>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            await Host.StopAsync().DefaultTimeout().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        finally
        {
            Host.Dispose();
            DeleteDirectory(_tempDirectory);
        }
    }

    private static void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }
}

/// <summary>What a test configures before <see cref="TransportTestServer"/> starts.</summary>
public sealed class TransportTestServerBuilder
{
    private readonly string _tempDirectory;

    internal TransportTestServerBuilder(HostApplicationBuilder host, ITransportBuilder transport, string tempDirectory)
    {
        Host = host;
        Transport = transport;
        _tempDirectory = tempDirectory;
    }

    /// <summary>The host builder: configuration, services, logging.</summary>
    public HostApplicationBuilder Host { get; }

    /// <summary>The transport builder: <c>AddProtocol</c>, <c>Listen</c>.</summary>
    public ITransportBuilder Transport { get; }

    /// <summary>A URL on <paramref name="transport"/> at a free address (port 0, fresh socket path, fresh memory name).</summary>
    /// <param name="transport">The transport.</param>
    /// <returns>The URL.</returns>
    public string ListenUrl(TestTransport transport) => transport.ListenUrl(_tempDirectory);
}
