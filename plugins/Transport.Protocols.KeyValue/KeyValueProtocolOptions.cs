namespace Transport.Protocols.KeyValue;

/// <summary>Options of <see cref="KeyValueProtocol"/>: plain data, bindable from configuration.</summary>
public sealed class KeyValueProtocolOptions
{
    /// <summary>
    /// The largest request, in bytes on the wire: a bulk string longer than this is refused with
    /// <c>ERR Protocol error: invalid bulk length</c>, a larger request closes the connection after a protocol error.
    /// Keep it below the endpoint's <c>MaxReadBufferSize</c>, or a request that large can never arrive whole.
    /// </summary>
    /// <remarks>Defaults to 512 KiB; at least 1 KiB.</remarks>
    public int MaxRequestSize { get; set; } = 512 * 1024;

    /// <summary>
    /// The most bytes of pub/sub messages queued for one subscriber that is not reading them; past it the subscriber is
    /// disconnected, as by Redis's <c>client-output-buffer-limit pubsub</c> hard limit (there is no soft limit).
    /// </summary>
    /// <remarks>Defaults to 32 MiB, Redis's default; at least 1 KiB.</remarks>
    public int PubSubOutputLimit { get; set; } = 32 * 1024 * 1024;
}
