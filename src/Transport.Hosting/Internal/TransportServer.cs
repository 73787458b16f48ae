using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Hosting.Internal.Middleware;

namespace Transport.Hosting.Internal;

/// <summary>
/// The hosted service: at start binds every endpoint (unbinding all of them if one fails), then accepts;
/// at stop unbinds, asks connections to close, waits until each endpoint's deadline, then aborts the rest.
/// </summary>
internal sealed class TransportServer : IHostedService, ITransportServer
{
    private readonly IOptions<TransportServerOptions> _options;
    private readonly IServiceProvider _services;
    private readonly TransportFactories _transports;
    private readonly ProtocolRegistration[] _protocols;
    private readonly ConnectionMiddlewareRegistration[] _middleware;
    private readonly TransportConfigurationPath _path;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ShutdownSequence _shutdown;
    private List<EndpointListener> _listeners = [];
    private readonly List<IDisposable> _owned = [];
    private int _bindCalled;
    private int _started;

    public TransportServer(
        IOptions<TransportServerOptions> options,
        IServiceProvider services,
        TransportFactories transports,
        IEnumerable<ProtocolRegistration> protocols,
        IEnumerable<ConnectionMiddlewareRegistration> middleware,
        TransportConfigurationPath path,
        ILoggerFactory loggerFactory)
    {
        _options = options;
        _services = services;
        _transports = transports;
        _protocols = [.. protocols];
        _middleware = [.. middleware];
        _path = path;
        _logger = loggerFactory.CreateLogger("Transport.Hosting");
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        _metrics = new TransportMetrics(services.GetService<IMeterFactory>(), () => _listeners, _time);
        _shutdown = new ShutdownSequence(_logger, _time, services.GetService<IMeterFactory>());
    }

    /// <summary>The bound listeners (for the HAProxy agent's load report).</summary>
    internal IReadOnlyList<EndpointListener> Listeners => _listeners;

    /// <summary>Where the stop is: the HAProxy agent answers <c>drain</c> from its first phase on.</summary>
    internal ShutdownState ShutdownState => _shutdown.State;

    public IReadOnlyList<TransportBinding> Bindings => [.. _listeners.Select(l => l.Binding)];

    /// <summary>Connections being served on all endpoints.</summary>
    public long ActiveConnections => _listeners.Sum(l => l.ActiveConnections);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await BindAsync(cancellationToken).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            return;
        }

        foreach (EndpointListener listener in _listeners)
        {
            listener.Start();
            TransportLog.Listening(_logger, listener.Binding.Url, listener.Name, listener.ProtocolName);
        }
    }

    /// <summary>
    /// Binds every endpoint without accepting yet (unbinding all of them if one fails). TryStartAsync calls it before the
    /// host starts, so that a bind error is reported once, by it; accepting (and the "Listening on" line) waits for the
    /// host's start, after the host has set up its lifetime (SIGTERM handling). Does nothing the second time.
    /// </summary>
    public async Task BindAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _bindCalled, 1) != 0)
        {
            return;
        }

        TransportServerOptions options = _options.Value;
        if (options.Endpoints.Count == 0)
        {
            TransportLog.NoEndpoints(_logger, _path.Path);
            return;
        }

        var bound = new List<EndpointListener>();
        TimeSpan shortestIdle = options.Endpoints.Values
            .SelectMany(e => new[] { IdleTimeout(e, options), MaxConnectionLifetime(e, options) })
            .Where(t => t > TimeSpan.Zero)
            .DefaultIfEmpty(TimeSpan.Zero)
            .Min();
        IdleSweeper? idle = null;
        if (shortestIdle > TimeSpan.Zero)
        {
            idle = new IdleSweeper(shortestIdle, _time, _logger, _metrics);
            _owned.Add(idle);
        }

        try
        {
            foreach ((string name, TransportEndpointOptions endpoint) in options.Endpoints.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase))
            {
                await BindEndpointAsync(name, endpoint, options, idle, bound, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            foreach (EndpointListener listener in bound)
            {
                await listener.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
            }

            DisposeOwned();
            throw;
        }

        _listeners = bound;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Drain delay, unbind, drain, abort at the deadline: ShutdownSequence.
        await _shutdown.RunAsync(_listeners, _options.Value.DrainDelay ?? TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        DisposeOwned();
    }

    private static TimeSpan IdleTimeout(TransportEndpointOptions endpoint, TransportServerOptions options) =>
        endpoint.Limits.IdleTimeout ?? options.Limits.IdleTimeout ?? TimeSpan.Zero;

    private static TimeSpan MaxConnectionLifetime(TransportEndpointOptions endpoint, TransportServerOptions options) =>
        endpoint.Limits.MaxConnectionLifetime ?? options.Limits.MaxConnectionLifetime ?? TimeSpan.Zero;

    /// <summary>What the endpoints' pipelines hold beyond a connection's life, such as certificate file watchers.</summary>
    private void DisposeOwned()
    {
        foreach (IDisposable resource in _owned)
        {
            resource.Dispose();
        }

        _owned.Clear();
    }

    private async Task BindEndpointAsync(string name, TransportEndpointOptions endpoint, TransportServerOptions options, IdleSweeper? idle,
        List<EndpointListener> bound, CancellationToken cancellationToken)
    {
        TransportLimits global = options.Limits;
        string url = endpoint.Url!;
        string protocolName = endpoint.Protocol!;
        ConnectionHandler protocol = Tls.AlpnProtocolSelector.Create(ResolveProtocol(protocolName), endpoint.Protocols, ResolveProtocol);
        TransportLimits limits = endpoint.Limits;
        var listenOptions = new TransportListenOptions
        {
            MaxReadBufferSize = limits.MaxReadBufferSize ?? global.MaxReadBufferSize ?? TransportListenOptions.DefaultMaxReadBufferSize,
            MaxWriteBufferSize = limits.MaxWriteBufferSize ?? global.MaxWriteBufferSize ?? TransportListenOptions.DefaultMaxWriteBufferSize,
        };
        long? maxConnections = limits.MaxConcurrentConnections ?? global.MaxConcurrentConnections;
        TimeSpan shutdownTimeout = limits.ShutdownTimeout ?? global.ShutdownTimeout ?? TransportLimits.DefaultShutdownTimeout;

        ConnectionDelegate application = EndpointPipeline.Build($"{_path.Path}:Endpoints:{name}", _path.Path, name, endpoint, options.EndpointDefaults,
            _middleware, _services, protocol, protocolName, _logger, _metrics, _time, _owned, idle, IdleTimeout(endpoint, options),
            MaxConnectionLifetime(endpoint, options), out string pipeline);
        TransportLog.Pipeline(_logger, name, pipeline + Tls.AlpnProtocolSelector.Describe(endpoint.Protocols, protocolName));

        IReadOnlyList<EndPoint> addresses = TransportUrl.ParseListenEndPoints(url);
        foreach (EndPoint address in addresses)
        {
            ITransportFactory transport = _transports.ForBind(address)!;
            IConnectionListener listener;
            try
            {
                listener = await transport.BindAsync(address, listenOptions, cancellationToken).ConfigureAwait(false);
            }
            catch (AddressInUseException ex)
            {
                throw new AddressInUseException(
                    $"{_path.Path}:Endpoints:{name} ('{url}'): {ex.Message} Stop the other server or choose another address (tcp port 0 picks a free one).", ex);
            }
            catch (IOException ex) when (addresses.Count > 1 && address is IPEndPoint { Address: var ip } && ip.Equals(IPAddress.IPv6Loopback))
            {
                // localhost: the machine has no IPv6 loopback; IPv4 alone still serves it, as Kestrel does.
                TransportLog.LocalhostIPv6Unavailable(_logger, name, ex.Message);
                continue;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
            {
                throw new TransportStartupException(
                    $"{_path.Path}:Endpoints:{name} ('{url}'): cannot listen on {TransportUrl.Format(address)}: {ex.Message}", ex);
            }

            bound.Add(new EndpointListener(name, protocolName, listener, application, maxConnections, shutdownTimeout,
                _logger, _metrics, _services.GetRequiredService<ConnectionRegistry>(), _options.Value.Telemetry.ConnectionSpans) { Time = _time });
        }
    }

    private ConnectionHandler ResolveProtocol(string name)
    {
        ProtocolRegistration registration = _protocols.First(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
        return (ConnectionHandler)_services.GetRequiredService(registration.HandlerType);
    }
}
