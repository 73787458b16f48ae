using System.Diagnostics.Metrics;

namespace Transport.Internal;

/// <summary>The registry's instruments, in the <c>Transport</c> meter; the gauges cost nothing until observed.</summary>
internal sealed class RegistryMetrics
{
    public RegistryMetrics(IMeterFactory? meterFactory, ConnectionRegistry registry)
    {
        Meter meter = meterFactory?.Create("Transport") ?? new Meter("Transport");
        meter.CreateObservableUpDownCounter("transport.outbox.size", () => registry.MeasureOutboxes(bytes: true), "By",
            "Bytes sent to connections and queued in their outboxes, not yet written to their output.");
        meter.CreateObservableUpDownCounter("transport.outbox.messages", () => registry.MeasureOutboxes(bytes: false), "{message}",
            "Messages queued in connections' outboxes.");
        Dropped = meter.CreateCounter<long>("transport.outbox.dropped", "{message}",
            "Messages not queued because the receiver's outbox was full (slow-consumer policy Drop).");
        Disconnected = meter.CreateCounter<long>("transport.outbox.disconnected", "{connection}",
            "Connections closed because their outbox was full (slow-consumer policy Disconnect).");
    }

    public Counter<long> Dropped { get; }

    public Counter<long> Disconnected { get; }
}
