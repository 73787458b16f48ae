using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Transport.Protocols.KeyValue.Internal;

namespace Transport.Protocols.KeyValue;

/// <summary>
/// What <see cref="KeyValueProtocol"/> keeps per connection: its pub/sub subscriptions and its entry in the
/// connection registry. Created and used by the protocol only; it has no public members.
/// </summary>
public sealed class KeyValueSession
{
    internal KeyValueSession(ConnectionContext connection)
    {
        Connection = connection;
    }

    internal ConnectionContext Connection { get; }

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
