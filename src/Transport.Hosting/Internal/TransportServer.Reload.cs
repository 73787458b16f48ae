using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Transport.Hosting.Internal.Middleware;

namespace Transport.Hosting.Internal;

/// <summary>
/// Configuration reload without a restart. A change under <c>Transport</c> (the configuration's reload token: appsettings.json
/// with reloadOnChange, or <c>IConfigurationRoot.Reload</c>) or SIGHUP, debounced, creates the options anew through the
/// options factory, so the same validators as at start judge the whole configuration first: an invalid one is logged,
/// counted and ignored. Then, per endpoint: a change that keeps the URL swaps the listener's <see cref="EndpointGeneration"/>
/// (new connections get it, open ones finish on theirs, the socket and a UDP session table stay); a changed URL binds the
/// new addresses first and only then unbinds the old ones, which drain; a removed endpoint drains; an added one binds; a
/// bind that fails leaves that endpoint as it was.
/// </summary>
/// <remarks>
/// Not <c>IOptionsMonitor</c>: the options are configured by a delegate, so the monitor would never hear of a change, and
/// where it does, an invalid change throws from its change callback, into the configuration provider's reload.
/// </remarks>
internal sealed partial class TransportServer
{
    /// <summary>File watchers report one save as several changes; they are applied once, this long after the last.</summary>
    internal static readonly TimeSpan ReloadDebounce = TimeSpan.FromMilliseconds(250);

    private const string ChangeTrigger = "change";
    private const string SignalTrigger = "signal";

    private readonly SemaphoreSlim _reloadLock = new(1, 1);
    private readonly CancellationTokenSource _drainDeadline = new();
    private readonly List<EndpointListener> _draining = [];
    private readonly List<Task> _drains = [];
    private TransportServerOptions _running = new();
    private Dictionary<string, RunningEndpoint> _endpoints = new(StringComparer.OrdinalIgnoreCase);
    private IdleSweeper? _idle;
    private TimeSpan _idleShortest;
    private IDisposable? _changeRegistration;
    private PosixSignalRegistration? _hangup;
    private ITimer? _debounce;
    private int _signalled;
    private int _reloadStopped;

    /// <summary>One endpoint as it runs: what it was built from, what it serves with, where it listens.</summary>
    private sealed record RunningEndpoint(string Url, string Key, EndpointGeneration Generation, TransportListenOptions ListenOptions,
        List<EndpointListener> Listeners)
    {
        public RunningEndpoint(TransportEndpointOptions endpoint, TransportServerOptions options, EndpointGeneration generation,
            TransportListenOptions listenOptions, List<EndpointListener> listeners)
            : this(endpoint.Url!.Trim(), Describe(endpoint, options), generation, listenOptions, listeners)
        {
        }
    }

    /// <summary>Releases what watching for reloads holds; the container calls it after the host has stopped.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _reloadStopped, 1);
        _changeRegistration?.Dispose();
        _hangup?.Dispose();
        _debounce?.Dispose();
        _drainDeadline.Dispose();
        _reloadLock.Dispose();
        _idle = null;
    }

    /// <summary>The listeners that serve connections: the bound ones and those draining after a reload.</summary>
    private List<EndpointListener> ServingListeners()
    {
        List<EndpointListener> listeners = _listeners;
        lock (_draining)
        {
            return _draining.Count == 0 ? listeners : [.. listeners, .. _draining];
        }
    }

    private void StartWatchingForReload()
    {
        _debounce = _time.CreateTimer(static state => ((TransportServer)state!).OnDebounced(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (_path.Section is { } section)
        {
            _changeRegistration = ChangeToken.OnChange(section.GetReloadToken, ScheduleReload);
        }

        // SIGHUP is the Unix daemon's "re-read your configuration"; unhandled, it would end the process.
        if (!OperatingSystem.IsWindows() && !OperatingSystem.IsBrowser() && !OperatingSystem.IsWasi())
        {
            _hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnHangup);
        }
    }

    private async Task StopWatchingForReloadAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _reloadStopped, 1);
        _changeRegistration?.Dispose();
        _hangup?.Dispose();
        _debounce?.Dispose();
        try
        {
            // Waits out a reload in progress; none starts after (_reloadStopped).
            await _reloadLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            _reloadLock.Release();
        }
        catch (OperationCanceledException)
        {
            // The host's deadline: stop anyway.
        }
    }

    /// <summary>The listeners a reload retired, draining until their ShutdownTimeout: the host's deadline aborts what is left.</summary>
    private async Task WaitForReloadDrainsAsync(CancellationToken cancellationToken)
    {
        Task[] drains;
        lock (_draining)
        {
            drains = [.. _drains];
        }

        if (drains.Length == 0)
        {
            return;
        }

        using CancellationTokenRegistration deadline = cancellationToken.Register(static state => ((CancellationTokenSource)state!).Cancel(), _drainDeadline);
        await Task.WhenAll(drains).ConfigureAwait(false);
    }

    private void OnHangup(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Volatile.Read(ref _reloadStopped) != 0)
        {
            return;
        }

        Volatile.Write(ref _signalled, 1);
        try
        {
            // Re-read the files (and every other provider), as a change to them would; that change schedules the reload too.
            (_services.GetService<IConfiguration>() as IConfigurationRoot)?.Reload();
        }
        catch (Exception ex)
        {
            Volatile.Write(ref _signalled, 0);
            TransportLog.SignalReadFailed(_logger, ex.Message.ReplaceLineEndings(" "));
            _metrics.CountReload("invalid", SignalTrigger);
            return;
        }

        ScheduleReload();
    }

    private void ScheduleReload()
    {
        try
        {
            _debounce?.Change(ReloadDebounce, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Stopping.
        }
    }

    private void OnDebounced() => _ = ReloadSafelyAsync();

    /// <summary>Runs on a timer: never throws.</summary>
    private async Task ReloadSafelyAsync()
    {
        if (Volatile.Read(ref _reloadStopped) != 0)
        {
            return;
        }

        string trigger = Interlocked.Exchange(ref _signalled, 0) != 0 ? SignalTrigger : ChangeTrigger;
        try
        {
            await ReloadAsync(trigger, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            TransportLog.ReloadFailed(_logger, trigger, ex);
            _metrics.CountReload("failed", trigger);
        }
    }

    /// <summary>Applies the configuration as it is now; returns the <c>transport.config.reload.result</c> it counted, or null when stopped.</summary>
    internal async Task<string?> ReloadAsync(string trigger, CancellationToken cancellationToken)
    {
        await _reloadLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _reloadStopped) != 0 || Volatile.Read(ref _started) == 0)
            {
                return null;
            }

            string result = await ApplyAsync(trigger, cancellationToken).ConfigureAwait(false);
            _metrics.CountReload(result, trigger);
            return result;
        }
        finally
        {
            _reloadLock.Release();
        }
    }

    private async Task<string> ApplyAsync(string trigger, CancellationToken cancellationToken)
    {
        string triggerText = trigger == SignalTrigger ? "SIGHUP" : "configuration changed";
        TransportServerOptions next;
        try
        {
            // The same configure delegates and validators as at start: the whole section is judged before anything changes.
            next = _services.GetRequiredService<IOptionsFactory<TransportServerOptions>>().Create(Options.DefaultName);
        }
        catch (OptionsValidationException ex)
        {
            TransportLog.ReloadInvalid(_logger, triggerText, string.Join(" ", ex.Failures).ReplaceLineEndings(" "));
            return "invalid";
        }
        catch (InvalidOperationException ex)
        {
            // The binder's own conversion errors.
            TransportLog.ReloadInvalid(_logger, triggerText, ex.Message.ReplaceLineEndings(" "));
            return "invalid";
        }

        Dictionary<string, RunningEndpoint> running = _endpoints;
        var added = next.Endpoints.Keys.Where(n => !running.ContainsKey(n)).Order(StringComparer.OrdinalIgnoreCase).ToList();
        var removed = running.Keys.Where(n => !next.Endpoints.ContainsKey(n)).Order(StringComparer.OrdinalIgnoreCase).ToList();
        var changed = next.Endpoints
            .Where(e => running.TryGetValue(e.Key, out RunningEndpoint? r) && (r.Url != e.Value.Url!.Trim() || r.Key != Describe(e.Value, next)))
            .Select(e => e.Key).Order(StringComparer.OrdinalIgnoreCase).ToList();
        _running = next;
        if (added.Count + removed.Count + changed.Count == 0)
        {
            if (trigger == SignalTrigger)
            {
                TransportLog.ReloadApplied(_logger, triggerText, "no changes");
            }
            else
            {
                TransportLog.ReloadUnchanged(_logger, triggerText);
            }

            return "unchanged";
        }

        var endpoints = new Dictionary<string, RunningEndpoint>(running, StringComparer.OrdinalIgnoreCase);
        var failed = new List<string>();
        var retiring = new List<(string Name, List<EndpointListener> Listeners)>();
        IdleSweeper? idle = IdleSweeperFor(next);
        try
        {
            // Make before break: every new address is bound before any old one is released.
            foreach (string name in added.Concat(changed))
            {
                TransportEndpointOptions endpoint = next.Endpoints[name];
                endpoints.TryGetValue(name, out RunningEndpoint? old);
                RunningEndpoint? applied = await ApplyEndpointAsync(name, endpoint, next, old, idle, retiring, cancellationToken).ConfigureAwait(false);
                if (applied is null)
                {
                    failed.Add(name);
                }
                else
                {
                    endpoints[name] = applied;
                }
            }

            foreach (string name in removed)
            {
                retiring.Add((name, endpoints[name].Listeners));
                endpoints[name].Generation.Retire();
                endpoints.Remove(name);
            }
        }
        finally
        {
            _endpoints = endpoints;
            _listeners = [.. endpoints.OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase).SelectMany(e => e.Value.Listeners)];
            foreach ((string name, List<EndpointListener> listeners) in retiring)
            {
                await RetireAsync(name, listeners).ConfigureAwait(false);
            }
        }

        var changes = new StringBuilder();
        Append(changes, '+', added.Except(failed, StringComparer.OrdinalIgnoreCase));
        Append(changes, '~', changed.Except(failed, StringComparer.OrdinalIgnoreCase));
        Append(changes, '-', removed);
        if (failed.Count > 0)
        {
            changes.Append(changes.Length == 0 ? "" : " ").Append("(kept running: ").AppendJoin(", ", failed).Append(')');
        }

        TransportLog.ReloadApplied(_logger, triggerText, changes.ToString());
        return failed.Count > 0 ? "rolled_back" : "applied";
    }

    /// <summary>
    /// Applies one added or changed endpoint; null when it keeps running as it was (its bind or its pipeline failed). Listeners
    /// it no longer uses go to <paramref name="retiring"/>, to be released once every new address is bound.
    /// </summary>
    private async Task<RunningEndpoint?> ApplyEndpointAsync(string name, TransportEndpointOptions endpoint, TransportServerOptions options,
        RunningEndpoint? old, IdleSweeper? idle, List<(string, List<EndpointListener>)> retiring, CancellationToken cancellationToken)
    {
        EndpointGeneration generation;
        TransportListenOptions listenOptions;
        try
        {
            generation = BuildGeneration(name, endpoint, options, idle, out listenOptions);
        }
        catch (InvalidOperationException ex)
        {
            TransportLog.EndpointRolledBack(_logger, name, ex.Message.ReplaceLineEndings(" "));
            return null;
        }

        string url = endpoint.Url!.Trim();
        if (old is not null && old.Url == url)
        {
            // Same addresses: the sockets stay (and a UDP endpoint's sessions); new connections get the new generation, with
            // the new buffer limits (and a UDP endpoint's PROXY protocol policy), which the transports read per connection (per
            // datagram) from the options they were bound with.
            old.ListenOptions.MaxReadBufferSize = listenOptions.MaxReadBufferSize;
            old.ListenOptions.MaxWriteBufferSize = listenOptions.MaxWriteBufferSize;
            old.ListenOptions.DatagramProxyProtocol = listenOptions.DatagramProxyProtocol;
            foreach (EndpointListener listener in old.Listeners)
            {
                listener.Apply(generation);
            }

            old.Generation.Retire();
            return new RunningEndpoint(endpoint, options, generation, old.ListenOptions, old.Listeners);
        }

        // An address this endpoint already listens on is kept (a socket cannot be bound twice); the others are bound anew.
        List<EndpointListener> keep = old is null ? [] : [.. old.Listeners.Where(l => ListensOn(l, url))];
        var bound = new List<EndpointListener>();
        try
        {
            await BindEndpointAsync(name, url, generation, listenOptions, [.. keep.Select(l => l.EndPoint)], bound, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever the transport threw: this endpoint stays as it was, the others go on.
            foreach (EndpointListener listener in bound)
            {
                await listener.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
            }

            generation.Retire();
            TransportLog.EndpointRolledBack(_logger, name, ex.Message.ReplaceLineEndings(" "));
            return null;
        }

        foreach (EndpointListener listener in bound)
        {
            listener.Start();
            TransportLog.Listening(_logger, listener.Binding.Url, name, listener.ProtocolName);
        }

        if (old is not null)
        {
            old.ListenOptions.MaxReadBufferSize = listenOptions.MaxReadBufferSize;
            old.ListenOptions.MaxWriteBufferSize = listenOptions.MaxWriteBufferSize;
            old.ListenOptions.DatagramProxyProtocol = listenOptions.DatagramProxyProtocol;
            foreach (EndpointListener listener in keep)
            {
                listener.Apply(generation);
            }

            retiring.Add((name, [.. old.Listeners.Except(keep)]));
            old.Generation.Retire();
        }

        return new RunningEndpoint(endpoint, options, generation, listenOptions, [.. keep, .. bound]);
    }

    /// <summary>Whether <paramref name="listener"/> is bound to one of <paramref name="url"/>'s fixed addresses (not port 0).</summary>
    private static bool ListensOn(EndpointListener listener, string url)
    {
        try
        {
            return TransportUrl.ParseListenEndPoints(url).Any(a => a is not IPEndPoint { Port: 0 } && a.Equals(listener.EndPoint));
        }
        catch (Exception ex) when (ex is FormatException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>Stops accepting on <paramref name="listeners"/> now; their open connections drain in the background.</summary>
    private async Task RetireAsync(string name, List<EndpointListener> listeners)
    {
        if (listeners.Count == 0)
        {
            return;
        }

        try
        {
            foreach (EndpointListener listener in listeners)
            {
                await listener.UnbindAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            TransportLog.ReloadDrainFailed(_logger, name, ex);
        }

        lock (_draining)
        {
            _draining.AddRange(listeners);
            _drains.Add(DrainAsync(name, listeners));
        }
    }

    private async Task DrainAsync(string name, List<EndpointListener> listeners)
    {
        await Task.Yield();
        try
        {
            await Task.WhenAll(listeners.Select(l => l.DrainAsync(_drainDeadline.Token))).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            TransportLog.ReloadDrainFailed(_logger, name, ex);
        }
        finally
        {
            lock (_draining)
            {
                _draining.RemoveAll(listeners.Contains);
            }
        }
    }

    private static void Append(StringBuilder text, char sign, IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            text.Append(text.Length == 0 ? "" : " ").Append(sign).Append(name);
        }
    }

    /// <summary>
    /// Everything but the URL that decides how an endpoint serves a connection, resolved against the server-wide values it
    /// inherits, as text: two endpoints with equal text serve alike. Only what an endpoint uses counts (the defaults' TLS
    /// values only where the endpoint has TLS), so a change elsewhere leaves it alone.
    /// </summary>
    private static string Describe(TransportEndpointOptions endpoint, TransportServerOptions options)
    {
        var text = new StringBuilder();
        TransportLimits limits = endpoint.Limits;
        TransportLimits global = options.Limits;
        Add(text, "Protocol", endpoint.Protocol);
        foreach ((string alpn, string protocol) in endpoint.Protocols.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            Add(text, "Protocols:" + alpn, protocol);
        }

        Add(text, "MaxConcurrentConnections", limits.MaxConcurrentConnections ?? global.MaxConcurrentConnections);
        Add(text, "ShutdownTimeout", limits.ShutdownTimeout ?? global.ShutdownTimeout);
        Add(text, "MaxReadBufferSize", limits.MaxReadBufferSize ?? global.MaxReadBufferSize);
        Add(text, "MaxWriteBufferSize", limits.MaxWriteBufferSize ?? global.MaxWriteBufferSize);
        Add(text, "IdleTimeout", limits.IdleTimeout ?? global.IdleTimeout);
        Add(text, "MaxConnectionLifetime", limits.MaxConnectionLifetime ?? global.MaxConnectionLifetime);
        Add(text, "ConnectionSpans", options.Telemetry.ConnectionSpans);
        if (endpoint.Tls is { } tls)
        {
            AddTls(text, "Tls", tls);
            AddTls(text, "EndpointDefaults:Tls", options.EndpointDefaults.Tls);
        }

        AddProxyProtocol(text, "ProxyProtocol", endpoint.ProxyProtocol);
        AddProxyProtocol(text, "EndpointDefaults:ProxyProtocol", options.EndpointDefaults.ProxyProtocol);
        for (int i = 0; i < endpoint.Middleware.Count; i++)
        {
            IConfigurationSection element = endpoint.Middleware[i];
            string prefix = "Middleware:" + i.ToString(CultureInfo.InvariantCulture);
            Add(text, prefix, element.Value);
            foreach ((string key, string? value) in element.AsEnumerable(makePathsRelative: true).OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                Add(text, prefix + ":" + key, value);
            }
        }

        return text.ToString();
    }

    private static void AddTls(StringBuilder text, string prefix, TransportTlsOptions tls)
    {
        Add(text, prefix + ":Enabled", tls.Enabled);
        AddCertificate(text, prefix + ":Certificate", tls.Certificate);
        Add(text, prefix + ":SslProtocols", tls.SslProtocols);
        Add(text, prefix + ":ClientCertificateMode", tls.ClientCertificateMode);
        Add(text, prefix + ":ClientCertificateAuthorityPath", tls.ClientCertificateAuthorityPath);
        Add(text, prefix + ":ApplicationProtocols", string.Join(',', tls.ApplicationProtocols));
        Add(text, prefix + ":HandshakeTimeout", tls.HandshakeTimeout);
        foreach ((string name, TransportSniOptions sni) in tls.Sni.OrderBy(s => s.Key, StringComparer.OrdinalIgnoreCase))
        {
            string key = prefix + ":Sni:" + name;
            AddCertificate(text, key + ":Certificate", sni.Certificate);
            Add(text, key + ":SslProtocols", sni.SslProtocols);
            Add(text, key + ":ClientCertificateMode", sni.ClientCertificateMode);
            Add(text, key + ":ApplicationProtocols", string.Join(',', sni.ApplicationProtocols));
        }
    }

    private static void AddCertificate(StringBuilder text, string prefix, TransportCertificateOptions certificate)
    {
        Add(text, prefix + ":Path", certificate.Path);
        Add(text, prefix + ":KeyPath", certificate.KeyPath);
        Add(text, prefix + ":Password", certificate.Password);
        Add(text, prefix + ":Subject", certificate.Subject);
        Add(text, prefix + ":Store", certificate.Store);
        Add(text, prefix + ":Location", certificate.Location);
        Add(text, prefix + ":AllowInvalid", certificate.AllowInvalid);
    }

    private static void AddProxyProtocol(StringBuilder text, string prefix, TransportProxyProtocolOptions? proxy)
    {
        if (proxy is null)
        {
            return;
        }

        Add(text, prefix + ":Mode", proxy.Mode);
        Add(text, prefix + ":TrustedProxies", string.Join(',', proxy.TrustedProxies));
        Add(text, prefix + ":HeaderTimeout", proxy.HeaderTimeout);
        Add(text, prefix + ":MaxHeaderBytes", proxy.MaxHeaderBytes);
    }

    private static void Add(StringBuilder text, string key, object? value) =>
        text.Append(key).Append('=').Append(Convert.ToString(value, CultureInfo.InvariantCulture)).Append('\n');
}
