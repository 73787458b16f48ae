using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Transport.Hosting.Internal.Systemd;

/// <summary>
/// sd_notify without libsystemd: datagrams to <c>$NOTIFY_SOCKET</c> (a path, or <c>@name</c> in the abstract namespace).
/// <c>READY=1</c> when the host has started (every endpoint bound and accepting); <c>STATUS=</c> with the live connection
/// and UDP session counts, every <see cref="StatusInterval"/> when they changed; <c>STOPPING=1</c> and
/// <c>EXTEND_TIMEOUT_USEC=</c> (the time left to the drain deadline) when stopping begins and while it lasts;
/// <c>WATCHDOG=1</c> every half <c>WATCHDOG_USEC</c> while every accept loop runs. Nothing at all without NOTIFY_SOCKET.
/// </summary>
internal sealed class SystemdNotifier : IHostedService, IDisposable
{
    /// <summary>How often STATUS= (and, while draining, EXTEND_TIMEOUT_USEC=) is refreshed.</summary>
    public static readonly TimeSpan StatusInterval = TimeSpan.FromSeconds(5);

    /// <summary>Beyond the drain deadline, for aborting what is left and exiting.</summary>
    public static readonly TimeSpan ExitMargin = TimeSpan.FromSeconds(5);

    private readonly TransportServer _server;
    private readonly IOptions<TransportServerOptions> _options;
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private Socket? _socket;
    private UnixDomainSocketEndPoint? _target;
    private string _socketName = "";
    private bool _lifetimeNotifies;
    private ITimer? _statusTimer;
    private ITimer? _watchdogTimer;
    private string? _lastStatus;
    private long _drainDeadline;
    private int _stopping;
    private int _watchdogWithheld;
    private int _sendFailed;

    public SystemdNotifier(TransportServer server, IOptions<TransportServerOptions> options, IServiceProvider services, ILoggerFactory loggerFactory)
    {
        _server = server;
        _options = options;
        _services = services;
        _logger = loggerFactory.CreateLogger("Transport.Hosting");
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        string? notifySocket = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(notifySocket) || !OperatingSystem.IsLinux() || _services.GetService<IHostApplicationLifetime>() is not { } lifetime)
        {
            return Task.CompletedTask;
        }

        if (notifySocket[0] != '/' && notifySocket[0] != '@')
        {
            SystemdLog.NotifyFailed(_logger, notifySocket, "NOTIFY_SOCKET must be an absolute path or @abstract-name");
            return Task.CompletedTask;
        }

        _socketName = notifySocket;
        _target = new UnixDomainSocketEndPoint(notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };

        // UseSystemd's SystemdLifetime already sends READY=1 and STOPPING=1 at the same moments: one sender each.
        _lifetimeNotifies = _services.GetService<IHostLifetime>()?.GetType().FullName == "Microsoft.Extensions.Hosting.Systemd.SystemdLifetime";
        if (_lifetimeNotifies)
        {
            SystemdLog.SystemdLifetimeDetected(_logger);
        }

        TimeSpan watchdog = WatchdogInterval();
        SystemdLog.Notifying(_logger, notifySocket, StatusInterval.TotalSeconds,
            watchdog > TimeSpan.Zero ? $", WATCHDOG=1 every {watchdog.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s" : "");
        lifetime.ApplicationStarted.Register(() => OnStarted(watchdog));
        lifetime.ApplicationStopping.Register(OnStopping);
        lifetime.ApplicationStopped.Register(Dispose);
        return Task.CompletedTask;
    }

    // The server's own stop drains; this one only keeps telling systemd about it, until the host has stopped.
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        lock (_lock)
        {
            _statusTimer?.Dispose();
            _watchdogTimer?.Dispose();
            _statusTimer = null;
            _watchdogTimer = null;
            _socket?.Dispose();
            _socket = null;
        }
    }

    /// <summary>Half of WATCHDOG_USEC when the watchdog is on for this process; zero otherwise.</summary>
    private TimeSpan WatchdogInterval()
    {
        string? usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (string.IsNullOrEmpty(usec))
        {
            return TimeSpan.Zero;
        }

        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(pid) && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return TimeSpan.Zero;
        }

        if (!long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long microseconds) || microseconds <= 0)
        {
            SystemdLog.BadWatchdogUsec(_logger, usec);
            return TimeSpan.Zero;
        }

        return TimeSpan.FromMicroseconds(microseconds / 2.0);
    }

    private void OnStarted(TimeSpan watchdog)
    {
        // A lifetime callback that throws would fail the host's start: log, and serve without the notifications.
        try
        {
            StartNotifying(watchdog);
        }
        catch (Exception ex)
        {
            SystemdLog.NotifyFailed(_logger, _socketName, ex.Message);
        }
    }

    private void StartNotifying(TimeSpan watchdog)
    {
        string status = Status();
        Send(_lifetimeNotifies ? "STATUS=" + status : "READY=1\nSTATUS=" + status);
        lock (_lock)
        {
            if (_socket is null)
            {
                return;
            }

            _lastStatus = status;
            _statusTimer = _time.CreateTimer(static state => ((SystemdNotifier)state!).OnStatusTick(), this, StatusInterval, StatusInterval);
            if (watchdog > TimeSpan.Zero)
            {
                Send("WATCHDOG=1");
                _watchdogTimer = _time.CreateTimer(static state => ((SystemdNotifier)state!).OnWatchdogTick(), this, watchdog, watchdog);
            }
        }
    }

    private void OnStopping()
    {
        // As in OnStarted: a throw here would reach the host's stop.
        try
        {
            NotifyStopping();
        }
        catch (Exception ex)
        {
            SystemdLog.NotifyFailed(_logger, _socketName, ex.Message);
        }
    }

    private void NotifyStopping()
    {
        TransportServerOptions options = _options.Value;
        TimeSpan longestDrain = _server.Listeners.Select(l => l.ShutdownTimeout).DefaultIfEmpty(TimeSpan.Zero).Max();
        TimeSpan total = (options.DrainDelay ?? TimeSpan.Zero) + longestDrain;
        Volatile.Write(ref _drainDeadline, _time.GetTimestamp() + (long)(total.TotalSeconds * _time.TimestampFrequency));
        Volatile.Write(ref _stopping, 1);
        string status = Status();
        var message = new StringBuilder();
        if (!_lifetimeNotifies)
        {
            message.Append("STOPPING=1\n");
        }

        message.Append("STATUS=").Append(status).Append('\n').Append(ExtendTimeout());
        Send(message.ToString());
        _lastStatus = status;
    }

    private void OnStatusTick()
    {
        try
        {
            string status = Status();
            bool stopping = Volatile.Read(ref _stopping) != 0;
            if (!stopping && status == _lastStatus)
            {
                return;
            }

            _lastStatus = status;
            Send(stopping ? "STATUS=" + status + "\n" + ExtendTimeout() : "STATUS=" + status);
        }
        catch (Exception ex)
        {
            SystemdLog.NotifyFailed(_logger, _socketName, ex.Message);
        }
    }

    private void OnWatchdogTick()
    {
        try
        {
            if (_server.ShutdownState == ShutdownState.Serving)
            {
                foreach (EndpointListener listener in _server.Listeners)
                {
                    if (!listener.AcceptLoopRunning)
                    {
                        if (Interlocked.Exchange(ref _watchdogWithheld, 1) == 0)
                        {
                            SystemdLog.WatchdogWithheld(_logger, listener.Name);
                        }

                        return;
                    }
                }
            }

            Send("WATCHDOG=1");
        }
        catch (Exception ex)
        {
            SystemdLog.NotifyFailed(_logger, _socketName, ex.Message);
        }
    }

    /// <summary>EXTEND_TIMEOUT_USEC= for the time left to the drain deadline, plus the margin to exit.</summary>
    private string ExtendTimeout()
    {
        long left = Volatile.Read(ref _drainDeadline) - _time.GetTimestamp();
        TimeSpan remaining = TimeSpan.FromSeconds(Math.Max(0, left) / (double)_time.TimestampFrequency) + ExitMargin;
        return "EXTEND_TIMEOUT_USEC=" + ((long)remaining.TotalMicroseconds).ToString(CultureInfo.InvariantCulture);
    }

    private string Status()
    {
        long connections = 0;
        long sessions = 0;
        IReadOnlyList<EndpointListener> listeners = _server.Listeners;
        foreach (EndpointListener listener in listeners)
        {
            if (listener.Binding.EndPoint is UdpEndPoint)
            {
                sessions += listener.ActiveConnections;
            }
            else
            {
                connections += listener.ActiveConnections;
            }
        }

        string counts = string.Create(CultureInfo.InvariantCulture, $"{connections} connection(s), {sessions} UDP session(s)");
        return Volatile.Read(ref _stopping) != 0
            ? "Draining: " + counts + " left"
            : string.Create(CultureInfo.InvariantCulture, $"Serving {counts} on {listeners.Count} endpoint(s)");
    }

    private void Send(string message)
    {
        lock (_lock)
        {
            if (_socket is null || _target is null)
            {
                return;
            }

            try
            {
                _socket.SendTo(Encoding.UTF8.GetBytes(message), SocketFlags.None, _target);
            }
            catch (SocketException ex)
            {
                // systemd gone, or its queue full: say so once, and keep serving.
                if (Interlocked.Exchange(ref _sendFailed, 1) == 0)
                {
                    SystemdLog.NotifyFailed(_logger, _socketName, ex.Message);
                }
            }
        }
    }
}
