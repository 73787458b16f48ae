namespace Transport.Internal;

/// <summary>
/// Marks the transports that ship with Transport. The engine tries every other registered transport first, so a
/// user's own factory for a scheme wins over the built-in one whether it was registered before or after <c>AddTransport</c>.
/// </summary>
internal interface IBuiltInTransport;
