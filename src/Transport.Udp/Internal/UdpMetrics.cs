using System.Diagnostics.Metrics;

namespace Transport.Udp.Internal;

/// <summary>The UDP transport's instruments, in the <c>Transport.Udp</c> meter.</summary>
internal sealed class UdpMetrics
{
    public const string MeterName = "Transport.Udp";

    public UdpMetrics(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        Sessions = meter.CreateUpDownCounter<long>("transport.udp.sessions", "{session}", "Open UDP sessions (peers).");
        Received = meter.CreateCounter<long>("transport.udp.datagrams.received", "{datagram}", "Datagrams delivered to sessions.");
        Dropped = meter.CreateCounter<long>("transport.udp.datagrams.dropped", "{datagram}", "Datagrams dropped because their session's queue was full.");
        Refused = meter.CreateCounter<long>("transport.udp.datagrams.refused", "{datagram}", "Datagrams from new peers dropped because the session limit was reached or the endpoint is stopping.");
        Oversize = meter.CreateCounter<long>("transport.udp.datagrams.oversize", "{datagram}", "Datagrams dropped because they were larger than the largest datagram size.");
        ReceiveErrors = meter.CreateCounter<long>("transport.udp.receive.errors", "{error}",
            "Receives that failed (ENOBUFS, ENOMEM or another error from the OS); the endpoint retries with a growing delay.");
    }

    public UpDownCounter<long> Sessions { get; }

    public Counter<long> Received { get; }

    public Counter<long> Dropped { get; }

    public Counter<long> Refused { get; }

    public Counter<long> Oversize { get; }

    /// <summary>Tagged with <c>transport.url</c> and <c>error.type</c>.</summary>
    public Counter<long> ReceiveErrors { get; }
}
