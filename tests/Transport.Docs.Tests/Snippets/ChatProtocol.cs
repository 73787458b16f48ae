#region docs:chat-protocol
using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Transport;
using Transport.Framing;

public sealed class ChatProtocol(ChatRooms rooms) : FramedProtocol<ReadOnlySequence<byte>, ChatProtocol.Session>
{
    private static readonly LineFramer Lines = new(maxMessageSize: 4096);

    public sealed class Session { public required RegisteredConnection Me { get; init; } public ConnectionGroup? Room { get; set; } }

    protected override IMessageFramer<ReadOnlySequence<byte>> CreateFramer(ConnectionContext connection) => Lines;

    protected override Session CreateState(ConnectionContext connection) =>
        new() { Me = connection.Features.Get<RegisteredConnection>()! };

    protected override async ValueTask OnMessageAsync(ConnectionContext connection, Session session, ReadOnlySequence<byte> line)
    {
        string text = Encoding.UTF8.GetString(line);
        if (text.StartsWith("/join ", StringComparison.Ordinal))
        {
            session.Room?.Remove(session.Me);
            session.Room = rooms.Get(text[6..]);
            session.Room.Add(session.Me);
            Lines.Write(connection.Transport.Output, "joined"u8);
        }
        else if (session.Room is { } room)
        {
            var output = new ArrayBufferWriter<byte>();
            Lines.Write(output, Encoding.UTF8.GetBytes(text));
            await room.SendAsync(output.WrittenMemory);      // everyone in the room, the sender too
        }
    }

    protected override ValueTask OnCloseRequestedAsync(ConnectionContext connection, Session session)
    {
        Lines.Write(connection.Transport.Output, "server going down, bye"u8);
        return default;
    }

    protected override ValueTask OnConnectionEndedAsync(ConnectionContext connection, Session session, Exception? failure)
    {
        session.Room?.Remove(session.Me);                   // it would leave on its own; explicit is clearer
        return default;
    }
}
#endregion
