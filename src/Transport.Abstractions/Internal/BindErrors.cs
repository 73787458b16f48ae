using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Transport.Internal;

/// <summary>What every transport throws when it cannot bind: the same exception types and messages for TCP, Unix and UDP.</summary>
internal static class BindErrors
{
    /// <summary>
    /// <see cref="AddressInUseException"/> when another socket holds the address (the host names it and may retry
    /// elsewhere), an <see cref="IOException"/> naming the endpoint for anything else (permission, no such address).
    /// </summary>
    public static Exception ToException(string endpoint, SocketException ex) => ex.SocketErrorCode == SocketError.AddressAlreadyInUse
        ? new AddressInUseException($"{endpoint} is already in use by another process.", ex)
        : new IOException($"Cannot listen on {endpoint}: {ex.Message}", ex);
}
