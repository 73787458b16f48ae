using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Transport.Protocols.KeyValue.Internal;

namespace Transport.Protocols.KeyValue;

/// <summary>
/// What <see cref="KeyValueProtocol"/> keeps per connection: its client id, name and activity (for <c>CLIENT</c>), its
/// pub/sub subscriptions and its entry in the connection registry. Created and used by the protocol only; it has no public members.
/// </summary>
public sealed class KeyValueSession
{
    internal KeyValueSession(ConnectionContext connection)
    {
        Connection = connection;
    }

    internal ConnectionContext Connection { get; }

    /// <summary>The client id (<c>CLIENT ID</c>): unique in this protocol instance, increasing with each connection.</summary>
    internal long Id { get; set; }

    /// <summary>The name set by <c>CLIENT SETNAME</c>; null when none. Replaced whole, so another connection's CLIENT LIST reads it safely.</summary>
    internal byte[]? Name { get; set; }

    /// <summary>What <c>CLIENT SETINFO LIB-NAME</c> and <c>LIB-VER</c> said.</summary>
    internal byte[]? LibraryName { get; set; }

    internal byte[]? LibraryVersion { get; set; }

    /// <summary>The socket's file descriptor, or -1 (not a socket).</summary>
    internal long FileDescriptor { get; set; } = -1;

    /// <summary>When the connection started, in the protocol clock's timestamp units.</summary>
    internal long StartedAt { get; set; }

    /// <summary>When the last command arrived, in the protocol clock's timestamp units.</summary>
    internal long LastCommandAt { get; set; }

    /// <summary>The last command run, as Redis names it (<c>set</c>, <c>client|info</c>); one of a fixed set of strings.</summary>
    internal string LastCommand { get; set; } = "NULL";

    /// <summary>The connection's registry entry: the host's, or one the protocol made when hosted without a registry.</summary>
    internal RegisteredConnection? Registration { get; set; }

    /// <summary>Set when the protocol registered the connection itself, to unregister it at the end.</summary>
    internal RegisteredConnection? OwnRegistration { get; set; }

    internal HashSet<byte[]>? Channels { get; set; }

    internal HashSet<byte[]>? Patterns { get; set; }

    /// <summary>Subscribed mode (RESP2): while this is above 0 only the pub/sub commands, PING, QUIT and RESET run.</summary>
    internal int Subscriptions => (Channels?.Count ?? 0) + (Patterns?.Count ?? 0);

    /// <summary>Where PUBLISH formats the pushed message once for all receivers; reused, so a publish does not allocate.</summary>
    internal ArrayBufferWriter<byte> Scratch => _scratch ??= new ArrayBufferWriter<byte>(256);

    private ArrayBufferWriter<byte>? _scratch;

    internal static HashSet<byte[]> NewSet() => new(ByteKeyComparer.Instance);
}
