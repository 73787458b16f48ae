namespace Transport.Internal;

/// <summary>
/// A connection whose transport has a thread that runs the connection's protocol inline anyway (the socket transport's
/// own I/O thread, under inline scheduling): the engine starts the protocol there, instead of a hop to the thread pool
/// and on to that thread for every connection.
/// </summary>
internal interface IInlineStartConnection
{
    /// <summary>
    /// Runs <paramref name="start"/> on the thread that runs the connection's protocol (at once when called there), when
    /// the transport has one; false when it has none, and the caller queues it to the thread pool.
    /// </summary>
    bool TryStartInline(Action<object?> start, object? state);
}
