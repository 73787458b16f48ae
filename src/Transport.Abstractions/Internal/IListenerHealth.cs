namespace Transport.Internal;

/// <summary>
/// A transport's listener that retries failed accepts (or receives) itself says here whether it is failing right now,
/// so the engine can report it (the HAProxy agent answers <c>down</c>; the systemd watchdog holds its ping).
/// </summary>
internal interface IListenerHealth
{
    /// <summary>Whether the last accept (or receive) failed and none has succeeded since.</summary>
    bool AcceptFailing { get; }
}
