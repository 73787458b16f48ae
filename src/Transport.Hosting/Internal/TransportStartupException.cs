namespace Transport.Hosting.Internal;

/// <summary>
/// An endpoint could not be bound at start for a reason the operator fixes (permissions, a path that is not a
/// directory…); its message names the endpoint's key and address. An <see cref="InvalidOperationException"/>, as before,
/// so callers that caught that still do.
/// </summary>
internal sealed class TransportStartupException(string message, Exception innerException) : InvalidOperationException(message, innerException);
