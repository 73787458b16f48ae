using System.Diagnostics.Metrics;

namespace Transport.Sockets.Internal;

/// <summary>The socket transport's instruments, in the <c>Transport.Sockets</c> meter.</summary>
internal sealed class SocketMetrics
{
    public const string MeterName = "Transport.Sockets";

    public SocketMetrics(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        AcceptErrors = meter.CreateCounter<long>("transport.accept.errors", "{error}",
            "Attempts to accept a connection that failed (out of descriptors or memory, or another error from the OS); the listener retries with a growing delay.");
    }

    /// <summary>Tagged with <c>transport.url</c> (the listener) and <c>error.type</c> (the <see cref="System.Net.Sockets.SocketError"/>).</summary>
    public Counter<long> AcceptErrors { get; }
}
