namespace Transport;

/// <summary>
/// What a send does when the receiving connection's outbox is full: the connection reads slower than messages
/// are sent to it. Chosen per call, per <see cref="ConnectionGroup"/>, or for the whole registry
/// (<see cref="ConnectionRegistryOptions.SlowConsumerPolicy"/>), the first one set winning.
/// </summary>
public enum SlowConsumerPolicy
{
    /// <summary>
    /// Close the connection (<see cref="Microsoft.AspNetCore.Connections.ConnectionContext.Abort()"/>) and free its
    /// outbox, as Redis's <c>client-output-buffer-limit</c> and NATS's slow-consumer rule do. The sender never waits.
    /// </summary>
    Disconnect,

    /// <summary>Drop the message for that connection only; it stays open and gets later messages that fit. The sender never waits.</summary>
    Drop,

    /// <summary>
    /// Wait until the outbox has room: the send's task completes when the message is queued (or the connection
    /// closes). The sender is as slow as the slowest receiver, so use it where losing a message is worse.
    /// </summary>
    Wait,
}
