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
/// A changed configuration is applied while running: TransportServer.Reload.cs.
/// </summary>
internal sealed partial class TransportServer : IHostedService, ITransportServer, IDisposable
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
    private volatile List<EndpointListener> _listeners = [];
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
        _metrics = new TransportMetrics(services.GetService<IMeterFactory>(), ServingListeners, _time);
        _shutdown = new ShutdownSequence(_logger, _time, services.GetService<IMeterFactory>());
    }

    /// <summary>The bound listeners (for the HAProxy agent's load report).</summary>
    internal IReadOnlyList<EndpointListener> Listeners => _listeners;

    /// <summary>Where the stop is: the HAProxy agent answers <c>drain</c> from its first phase on.</summary>
    internal ShutdownState ShutdownState => _shutdown.State;

    public IReadOnlyList<TransportBinding> Bindings => [.. _listeners.Select(l => l.Binding)];

    /// <summary>Connections being served on all endpoints, those draining after a reload included.</summary>
    public long ActiveConnections => ServingListeners().Sum(l => l.ActiveConnections);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await BindAsync(cancellationToken).ConfigureAwait(false);
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            return;
        }

        // Watching first, so that a SIGHUP from an operator who read "Listening on" never finds the default action (exit); the
        // lock holds a reload back until every listener accepts.
        await _reloadLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            StartWatchingForReload();
            foreach (EndpointListener listener in _listeners)
            {
                listener.Start();
                TransportLog.Listening(_logger, listener.Binding.Url, listener.Name, listener.ProtocolName);
            }
        }
        finally
        {
            _reloadLock.Release();
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
        _running = options;
        if (options.Endpoints.Count == 0)
        {
            TransportLog.NoEndpoints(_logger, _path.Path);
            return;
        }

        var bound = new List<EndpointListener>();
        var endpoints = new Dictionary<string, RunningEndpoint>(StringComparer.OrdinalIgnoreCase);
        IdleSweeper? idle = IdleSweeperFor(options);
        try
        {
            foreach ((string name, TransportEndpointOptions endpoint) in options.Endpoints.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase))
            {
                var listeners = new List<EndpointListener>();
                EndpointGeneration generation = BuildGeneration(name, endpoint, options, idle, out TransportListenOptions listenOptions);
                endpoints[name] = new RunningEndpoint(endpoint, options, generation, listenOptions, listeners);
                try
                {
                    await BindEndpointAsync(name, endpoint.Url!, generation, listenOptions, held: [], listeners, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    bound.AddRange(listeners);
                }
            }
        }
        catch
        {
            foreach (EndpointListener listener in bound)
            {
                await listener.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
            }

            foreach (RunningEndpoint endpoint in endpoints.Values)
            {
                endpoint.Generation.Retire();
            }

            DisposeOwned();
            throw;
        }

        _endpoints = endpoints;
        _listeners = bound;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // No reload from here on, and none still running: it would bind what is being unbound.
        await StopWatchingForReloadAsync(cancellationToken).ConfigureAwait(false);

        // Drain delay, unbind, drain, abort at the deadline: ShutdownSequence.
        await _shutdown.RunAsync(_listeners, _running.DrainDelay ?? TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        await WaitForReloadDrainsAsync(cancellationToken).ConfigureAwait(false);
        foreach (RunningEndpoint endpoint in _endpoints.Values)
        {
            endpoint.Generation.Retire();
        }

        DisposeOwned();
    }

    private static TimeSpan IdleTimeout(TransportEndpointOptions endpoint, TransportServerOptions options) =>
        endpoint.Limits.IdleTimeout ?? options.Limits.IdleTimeout ?? TimeSpan.Zero;

    /// <summary>
    /// The sweeper for the endpoints' idle timeouts: the one running when it sweeps often enough for every endpoint, or a
    /// new one (the old one goes on for the connections it holds until the server stops); null when no endpoint has one.
    /// </summary>
    private IdleSweeper? IdleSweeperFor(TransportServerOptions options)
    {
        TimeSpan shortestIdle = options.Endpoints.Values
            .SelectMany(e => new[] { IdleTimeout(e, options), MaxConnectionLifetime(e, options) })
            .Where(t => t > TimeSpan.Zero)
            .DefaultIfEmpty(TimeSpan.Zero)
            .Min();
        if (shortestIdle <= TimeSpan.Zero)
        {
            return _idle;
        }

        if (_idle is null || _idleShortest > shortestIdle)
        {
            _idle = new IdleSweeper(shortestIdle, _time, _logger, _metrics);
            _idleShortest = shortestIdle;
            _owned.Add(_idle);
        }

        return _idle;
    }

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

    /// <summary>Builds what the endpoint serves connections with (its pipeline, protocol and limits) and the options it binds with.</summary>
    /// <exception cref="InvalidOperationException">The configuration no longer holds (e.g. a certificate file went away since validation).</exception>
    private EndpointGeneration BuildGeneration(string name, TransportEndpointOptions endpoint, TransportServerOptions options, IdleSweeper? idle,
        out TransportListenOptions listenOptions)
    {
        TransportLimits global = options.Limits;
        string protocolName = endpoint.Protocol!;
        ConnectionHandler protocol = Tls.AlpnProtocolSelector.Create(ResolveProtocol(protocolName), endpoint.Protocols, ResolveProtocol);
        TransportLimits limits = endpoint.Limits;
        listenOptions = new TransportListenOptions
        {
            MaxReadBufferSize = limits.MaxReadBufferSize ?? global.MaxReadBufferSize ?? TransportListenOptions.DefaultMaxReadBufferSize,
            MaxWriteBufferSize = limits.MaxWriteBufferSize ?? global.MaxWriteBufferSize ?? TransportListenOptions.DefaultMaxWriteBufferSize,
            ReusePort = endpoint.ReusePort ?? options.EndpointDefaults.ReusePort ?? false,
        };
        if ((endpoint.Url ?? "").Trim().StartsWith("udp:", StringComparison.OrdinalIgnoreCase)
            && ProxyProtocol.ProxyProtocolSettings.Resolve(endpoint, options.EndpointDefaults, $"{_path.Path}:Endpoints:{name}", _path.Path, []) is { } proxy)
        {
            listenOptions.DatagramProxyProtocol = proxy.ForDatagrams();
        }

        long? maxConnections = limits.MaxConcurrentConnections ?? global.MaxConcurrentConnections;
        TimeSpan shutdownTimeout = limits.ShutdownTimeout ?? global.ShutdownTimeout ?? TransportLimits.DefaultShutdownTimeout;

        var owned = new List<IDisposable>();
        try
        {
            ConnectionDelegate application = EndpointPipeline.Build($"{_path.Path}:Endpoints:{name}", _path.Path, name, endpoint, options.EndpointDefaults,
                _middleware, _services, protocol, protocolName, _logger, _metrics, _time, owned, idle, IdleTimeout(endpoint, options),
                MaxConnectionLifetime(endpoint, options), out string pipeline);
            TransportLog.Pipeline(_logger, name, pipeline + Tls.AlpnProtocolSelector.Describe(endpoint.Protocols, protocolName));
            return new EndpointGeneration(name, application, protocolName, maxConnections, shutdownTimeout, endpoint: null, owned, _logger)
            {
                ConnectionSpans = options.Telemetry.ConnectionSpans,
            };
        }
        catch
        {
            foreach (IDisposable resource in owned)
            {
                resource.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Binds the addresses of <paramref name="url"/> but those in <paramref name="held"/> (already bound by this endpoint),
    /// adding a listener per address to <paramref name="bound"/>, which the caller unbinds when this throws.
    /// </summary>
    private async Task BindEndpointAsync(string name, string url, EndpointGeneration generation, TransportListenOptions listenOptions,
        IReadOnlyCollection<EndPoint> held, List<EndpointListener> bound, CancellationToken cancellationToken)
    {
        IReadOnlyList<EndPoint> addresses = Systemd.InheritedSockets.ParseListenEndPoints($"{_path.Path}:Endpoints:{name}", url, _logger, name);
        ConnectionDelegate application = Systemd.InheritedSockets.StopHostAfterAcceptedConnection(addresses, generation.Application, _services, _logger, name);
        if (!ReferenceEquals(application, generation.Application))
        {
            generation = generation.WithApplication(application);
        }
        foreach (EndPoint address in addresses)
        {
            if (held.Contains(address))
            {
                continue;
            }

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

            bound.Add(new EndpointListener(name, listener, generation, _logger, _metrics, _services.GetRequiredService<ConnectionRegistry>()) { Time = _time });
        }
    }

    private ConnectionHandler ResolveProtocol(string name)
    {
        ProtocolRegistration registration = _protocols.First(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
        return (ConnectionHandler)_services.GetRequiredService(registration.HandlerType);
    }
}
