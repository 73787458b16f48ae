namespace Transport.Hosting;

/// <summary>
/// What the server traces in its <c>Transport</c> activity source (see docs/telemetry.md). The short
/// <c>transport.accept</c> span is always there for a listener; the rest is opt-in.
/// </summary>
public sealed class TransportTelemetryOptions
{
    /// <summary>
    /// Whether each connection gets a <c>transport.connection</c> span from accept to close, current while the protocol
    /// runs (so a protocol's own spans nest under it), with <c>error.type</c> when it ended abnormally.
    /// </summary>
    /// <remarks>Defaults to false: long-lived connections make long spans, which most tracing back ends handle poorly.</remarks>
    public bool ConnectionSpans { get; set; }
}
