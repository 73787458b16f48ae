using System.Diagnostics.Metrics;
using Transport.Internal;

namespace Transport.Sockets.Internal;

/// <summary>The socket transport's instruments, in the <c>Transport</c> meter.</summary>
internal sealed class SocketMetrics
{
    public const string MeterName = TransportTelemetry.Name;

    public SocketMetrics(IMeterFactory? meterFactory)
    {
        Meter meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        AcceptErrors = meter.CreateCounter<long>("transport.socket.accept.errors", "{error}",
            "Attempts to accept a connection that failed (out of descriptors or memory, or another error from the OS); the listener retries with a growing delay.");
    }

    /// <summary>
    /// Tagged with the listener's <c>network.transport</c>, <c>network.type</c>, <c>server.address</c>, <c>server.port</c>
    /// and <c>error.type</c> (the <see cref="System.Net.Sockets.SocketError"/>).
    /// </summary>
    public Counter<long> AcceptErrors { get; }
}
