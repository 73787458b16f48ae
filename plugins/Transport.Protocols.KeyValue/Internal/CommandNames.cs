using System.Text;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// The commands the protocol knows, by their Redis names (lower case; a CLIENT subcommand as <c>client|info</c>), as
/// shared strings: what <c>cmd=</c> in CLIENT LIST shows, found without allocating.
/// </summary>
internal static class CommandNames
{
    public static readonly string[] All =
    [
        "ping", "echo", "get", "set", "del", "exists", "incr", "decr", "incrby", "decrby", "mget", "mset", "expire",
        "pexpire", "ttl", "pttl", "dbsize", "flushdb", "flushall", "select", "command", "config", "client", "hello", "info", "quit",
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "publish", "pubsub", "reset",
    ];

    private static readonly int s_clientIndex = Array.IndexOf(All, "client");

    private static readonly string[] s_client = ["id", "info", "list", "setname", "getname", "setinfo"];

    private static readonly byte[][] s_allBytes = [.. All.Select(Encoding.ASCII.GetBytes)];

    private static readonly byte[][] s_clientBytes = [.. s_client.Select(Encoding.ASCII.GetBytes)];

    private static readonly string[] s_clientNames = [.. s_client.Select(name => "client|" + name)];

    /// <summary>The name of <paramref name="command"/>, or null for a command the protocol does not know.</summary>
    public static string? Find(RespCommand command)
    {
        int index = IndexOf(s_allBytes, command[0]);
        if (index < 0)
        {
            return null;
        }

        if (index == s_clientIndex && command.Count > 1)
        {
            int sub = IndexOf(s_clientBytes, command[1]);
            return sub < 0 ? All[index] : s_clientNames[sub];
        }

        return All[index];
    }

    private static int IndexOf(byte[][] names, ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < names.Length; i++)
        {
            if (names[i].Length == name.Length && Ascii.EqualsIgnoreCase(names[i], name))
            {
                return i;
            }
        }

        return -1;
    }
}
