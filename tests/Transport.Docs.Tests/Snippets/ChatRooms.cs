#region docs:chat-rooms
using System.Collections.Concurrent;
using Transport;

public sealed class ChatRooms                               // one for the whole server: a singleton
{
    private readonly ConcurrentDictionary<string, ConnectionGroup> _rooms = new(StringComparer.Ordinal);

    public ConnectionGroup Get(string name) => _rooms.GetOrAdd(name, _ => new ConnectionGroup());
}
#endregion
