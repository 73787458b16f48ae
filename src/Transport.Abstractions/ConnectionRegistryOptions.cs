namespace Transport;

/// <summary>
/// Options of <see cref="ConnectionRegistry"/>: plain data, bound from <c>Transport:Registry</c> by the host.
/// </summary>
public sealed class ConnectionRegistryOptions
{
    /// <summary>The default of <see cref="MaxOutboxSize"/>: 1 MiB.</summary>
    public const int DefaultMaxOutboxSize = 1024 * 1024;

    /// <summary>
    /// The most bytes sent to one connection (by <see cref="RegisteredConnection.SendAsync"/>, a group or a
    /// broadcast) and not yet handed to its output; past it the <see cref="SlowConsumerPolicy"/> applies. A single
    /// message larger than this is still queued when the outbox is empty. Per connection it can be changed with
    /// <see cref="RegisteredConnection.MaxOutboxSize"/>.
    /// </summary>
    /// <remarks>Defaults to 1 MiB; at least 1.</remarks>
    public int MaxOutboxSize { get; set; } = DefaultMaxOutboxSize;

    /// <summary>What a send does when a connection's outbox is full, unless the call or the group says otherwise.</summary>
    /// <remarks>Defaults to <see cref="SlowConsumerPolicy.Disconnect"/>.</remarks>
    public SlowConsumerPolicy SlowConsumerPolicy { get; set; } = SlowConsumerPolicy.Disconnect;
}
