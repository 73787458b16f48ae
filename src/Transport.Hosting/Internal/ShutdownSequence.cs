using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal;

/// <summary>
/// The server's stop, in phases: report drain (the HAProxy agent answers <c>drain</c>) and keep serving for
/// <c>Transport:DrainDelay</c>, so that load balancers' checks notice and send no new connections; then stop accepting
/// (unbind every endpoint); then drain the open connections and UDP sessions until each endpoint's ShutdownTimeout and
/// abort the rest. Each phase is logged and its duration recorded in <c>transport.shutdown.phase.duration</c>.
/// </summary>
internal sealed class ShutdownSequence
{
    /// <summary>The phases, as the <c>transport.shutdown.phase</c> tag names them.</summary>
    public const string DrainDelayPhase = "drain_delay";

    public const string UnbindPhase = "unbind";

    public const string DrainPhase = "drain";

    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Histogram<double> _phaseDuration;
    private readonly KeyValuePair<string, object?>[][] _phaseTags;
    private int _state;

    public ShutdownSequence(ILogger logger, TimeProvider time, IMeterFactory? meterFactory)
    {
        _logger = logger;
        _time = time;
        Meter meter = meterFactory?.Create(TransportTelemetry.Name) ?? new Meter(TransportTelemetry.Name);
        _phaseDuration = meter.CreateHistogram("transport.shutdown.phase.duration", "s",
            "How long each phase of stopping the server took (transport.shutdown.phase: drain_delay, unbind, drain).",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = TransportTelemetry.ConnectionDurationBuckets });
        _phaseTags = [.. new[] { DrainDelayPhase, UnbindPhase, DrainPhase }.Select(phase =>
            new[] { new KeyValuePair<string, object?>("transport.shutdown.phase", phase) })];
    }

    /// <summary>Serving (0), reporting drain while still serving (1), no longer accepting (2), stopped (3).</summary>
    public ShutdownState State => (ShutdownState)Volatile.Read(ref _state);

    /// <summary>Runs the phases over <paramref name="listeners"/>; <paramref name="hostDeadline"/> is the host's shutdown timeout.</summary>
    public async Task RunAsync(IReadOnlyList<EndpointListener> listeners, TimeSpan drainDelay, CancellationToken hostDeadline)
    {
        long started = Stopwatch.GetTimestamp();
        Volatile.Write(ref _state, (int)ShutdownState.Draining);
        TimeSpan longestDrain = listeners.Select(l => l.ShutdownTimeout).DefaultIfEmpty(TimeSpan.Zero).Max();
        if (drainDelay > TimeSpan.Zero && listeners.Count > 0)
        {
            TransportLog.DrainDelayStarted(_logger, drainDelay, drainDelay + longestDrain);
            try
            {
                await Task.Delay(drainDelay, _time, hostDeadline).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                TransportLog.HostDeadlineDuringShutdown(_logger, DrainDelayPhase, drainDelay + longestDrain);
            }

            Record(0, started);
        }

        long unbinding = Stopwatch.GetTimestamp();
        Volatile.Write(ref _state, (int)ShutdownState.NotAccepting);
        foreach (EndpointListener listener in listeners)
        {
            await listener.UnbindAsync(hostDeadline).ConfigureAwait(false);
        }

        Record(1, unbinding);
        long open = listeners.Sum(l => l.ActiveConnections);
        TransportLog.StoppedAccepting(_logger, listeners.Count, open);

        long draining = Stopwatch.GetTimestamp();
        await Task.WhenAll(listeners.Select(l => l.DrainAsync(hostDeadline))).ConfigureAwait(false);
        Record(2, draining);
        if (hostDeadline.IsCancellationRequested && open > 0)
        {
            TransportLog.HostDeadlineDuringShutdown(_logger, DrainPhase, drainDelay + longestDrain);
        }

        Volatile.Write(ref _state, (int)ShutdownState.Stopped);
        TransportLog.Stopped(_logger, Stopwatch.GetElapsedTime(started).TotalSeconds, Stopwatch.GetElapsedTime(draining).TotalSeconds);
    }

    private void Record(int phase, long since)
    {
        if (_phaseDuration.Enabled)
        {
            _phaseDuration.Record(Stopwatch.GetElapsedTime(since).TotalSeconds, _phaseTags[phase]);
        }
    }
}

/// <summary>Where the server is in stopping.</summary>
internal enum ShutdownState
{
    Serving,

    /// <summary>Reporting drain to load balancers; still accepting, during <c>DrainDelay</c>.</summary>
    Draining,

    /// <summary>Every endpoint unbound; open connections finishing.</summary>
    NotAccepting,

    Stopped,
}
