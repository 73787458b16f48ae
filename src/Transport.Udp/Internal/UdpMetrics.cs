using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>The UDP transport's instruments, in the <c>Transport</c> meter; one <see cref="UdpEndpointMetrics"/> per listener tags them.</summary>
internal sealed class UdpMetrics
{
    public const string MeterName = TransportTelemetry.Name;

    public UdpMetrics(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Sessions = meter.CreateUpDownCounter<long>("transport.udp.active_sessions", "{session}", "Open UDP sessions (peers), accepted by the server or not yet.");
        Datagrams = meter.CreateCounter<long>("transport.udp.datagrams", "{datagram}",
            "Datagrams received, by transport.udp.outcome: delivered to a session, queue_full (the session had MaxQueuedDatagrams unread), refused (a new peer over MaxSessions or while stopping), oversize (over MaxDatagramSize).");
        ReceiveErrors = meter.CreateCounter<long>("transport.udp.receive.errors", "{error}",
            "Receives that failed (ENOBUFS, ENOMEM or another error from the OS); the endpoint retries with a growing delay.");
    }

    public UpDownCounter<long> Sessions { get; }

    public Counter<long> Datagrams { get; }

    public Counter<long> ReceiveErrors { get; }

    /// <summary>The instruments with <paramref name="endpoint"/>'s attributes, computed once.</summary>
    public UdpEndpointMetrics For(EndPoint endpoint) => new(this, TransportTelemetry.ServerTags(endpoint));
}

/// <summary>One UDP listener's view of <see cref="UdpMetrics"/>: each measurement takes a tag set built at bind.</summary>
internal sealed class UdpEndpointMetrics
{
    private readonly KeyValuePair<string, object?>[] _endpoint;

    public UdpEndpointMetrics(UdpMetrics metrics, List<KeyValuePair<string, object?>> endpoint)
    {
        _endpoint = [.. endpoint];
        ReceiveErrorsInstrument = metrics.ReceiveErrors;
        DatagramsInstrument = metrics.Datagrams;
        Sessions = new TaggedCounter(metrics.Sessions, _endpoint);
        Received = Outcome(metrics.Datagrams, endpoint, "delivered");
        Dropped = Outcome(metrics.Datagrams, endpoint, "queue_full");
        Refused = Outcome(metrics.Datagrams, endpoint, "refused");
        Oversize = Outcome(metrics.Datagrams, endpoint, "oversize");
    }

    public TaggedCounter Sessions { get; }

    /// <summary>Datagrams delivered to their session.</summary>
    public TaggedCounter Received { get; }

    /// <summary>Datagrams dropped because their session's queue was full.</summary>
    public TaggedCounter Dropped { get; }

    public TaggedCounter Refused { get; }

    public TaggedCounter Oversize { get; }

    private Counter<long> ReceiveErrorsInstrument { get; }

    private Counter<long> DatagramsInstrument { get; }

    /// <summary>Another outcome of received datagrams (the PROXY protocol's, created only where it is configured).</summary>
    public TaggedCounter ForOutcome(string outcome) => new(DatagramsInstrument, [.. _endpoint, new("transport.udp.outcome", outcome)]);

    /// <summary>Counts a failed receive (a rare path: the tags are built here).</summary>
    public void ReceiveError(string errorType)
    {
        var tags = new TagList(_endpoint) { { "error.type", errorType } };
        ReceiveErrorsInstrument.Add(1, in tags);
    }

    private static TaggedCounter Outcome(Counter<long> datagrams, List<KeyValuePair<string, object?>> endpoint, string outcome) =>
        new(datagrams, [.. endpoint, new("transport.udp.outcome", outcome)]);
}

/// <summary>A counter and the one tag set it is always measured with.</summary>
internal sealed class TaggedCounter(Instrument<long> instrument, KeyValuePair<string, object?>[] tags)
{
    public void Add(long delta)
    {
        switch (instrument)
        {
            case Counter<long> counter:
                counter.Add(delta, tags);
                break;
            case UpDownCounter<long> upDown:
                upDown.Add(delta, tags);
                break;
        }
    }
}
