using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// The protocol's live connections, for <c>CLIENT LIST</c>, <c>CLIENT INFO</c> and <c>CLIENT ID</c>, in Redis's format:
/// one line of <c>field=value</c> pairs per connection. A connection costs one dictionary entry; commands other than
/// CLIENT cost two field writes (the time and a reference to the command's name).
/// </summary>
internal sealed class Clients(TimeProvider time)
{
    private readonly ConcurrentDictionary<long, KeyValueSession> _sessions = new();
    private long _lastId;

    public void Add(KeyValueSession session)
    {
        session.Id = Interlocked.Increment(ref _lastId);
        session.StartedAt = session.LastCommandAt = time.GetTimestamp();
        if (session.Connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try
            {
                session.FileDescriptor = socket.SafeHandle.DangerousGetHandle().ToInt64();
            }
            catch (ObjectDisposedException)
            {
                // Closed already: the connection ends at once, and fd stays -1.
            }
        }

        _sessions[session.Id] = session;
    }

    public void Remove(KeyValueSession session) => _sessions.TryRemove(session.Id, out _);

    /// <summary>Marks a command's arrival: its time, and its name for <c>cmd=</c> when it is one the protocol knows.</summary>
    public void Touch(KeyValueSession session, RespCommand command)
    {
        session.LastCommandAt = time.GetTimestamp();
        if (CommandNames.Find(command) is { } name)
        {
            session.LastCommand = name;
        }
    }

    /// <summary>CLIENT and its subcommands (the caller checked there are at least two parts).</summary>
    public void Execute(KeyValueSession session, RespCommand command, PipeWriter output)
    {
        ReadOnlySpan<byte> sub = command[1];
        if (Is(sub, "ID"u8))
        {
            if (Arity(command, output, 2, "id"))
            {
                RespWriter.Integer(output, session.Id);
            }
        }
        else if (Is(sub, "INFO"u8))
        {
            if (Arity(command, output, 2, "info"))
            {
                ArrayBufferWriter<byte> text = session.Scratch;
                text.ResetWrittenCount();
                WriteLine(text, session, time.GetTimestamp());
                RespWriter.Bulk(output, text.WrittenSpan);
            }
        }
        else if (Is(sub, "LIST"u8))
        {
            List(session, command, output);
        }
        else if (Is(sub, "SETNAME"u8))
        {
            if (Arity(command, output, 3, "setname") && ValidName(command[2], output))
            {
                session.Name = command[2].IsEmpty ? null : command[2].ToArray();
                RespWriter.Raw(output, RespWriter.Ok);
            }
        }
        else if (Is(sub, "GETNAME"u8))
        {
            if (Arity(command, output, 2, "getname"))
            {
                if (session.Name is { } name)
                {
                    RespWriter.Bulk(output, name);
                }
                else
                {
                    RespWriter.Raw(output, RespWriter.NullBulk);
                }
            }
        }
        else if (Is(sub, "SETINFO"u8))
        {
            SetInfo(session, command, output);
        }
        else
        {
            RespWriter.Error(output, $"ERR unknown subcommand '{Printable(sub)}'. Try CLIENT HELP.");
        }
    }

    private void List(KeyValueSession session, RespCommand command, PipeWriter output)
    {
        // CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]], as Redis 7.
        int type = -1;
        int firstId = 0;
        for (int i = 2; i < command.Count; i++)
        {
            if (Is(command[i], "TYPE"u8) && i + 1 < command.Count && type < 0 && firstId == 0)
            {
                ReadOnlySpan<byte> name = command[++i];
                type = Is(name, "NORMAL"u8) ? 0 : Is(name, "PUBSUB"u8) ? 1 : Is(name, "MASTER"u8) || Is(name, "REPLICA"u8) || Is(name, "SLAVE"u8) ? 2 : -2;
                if (type == -2)
                {
                    RespWriter.Error(output, $"ERR Unknown client type '{Printable(name)}'");
                    return;
                }
            }
            else if (Is(command[i], "ID"u8) && i + 1 < command.Count && firstId == 0)
            {
                firstId = i + 1;
                for (int j = firstId; j < command.Count; j++)
                {
                    if (!RespNumbers.TryParseInt64(command[j], out long id) || id <= 0)
                    {
                        RespWriter.Error(output, "ERR Invalid client ID");
                        return;
                    }
                }

                break;
            }
            else
            {
                RespWriter.Error(output, "ERR syntax error");
                return;
            }
        }

        ArrayBufferWriter<byte> text = session.Scratch;
        text.ResetWrittenCount();
        long now = time.GetTimestamp();
        if (firstId > 0)
        {
            for (int j = firstId; j < command.Count; j++)
            {
                if (RespNumbers.TryParseInt64(command[j], out long id) && _sessions.TryGetValue(id, out KeyValueSession? listed) && OfType(listed, type))
                {
                    WriteLine(text, listed, now);
                }
            }
        }
        else
        {
            // In connection order, as Redis lists them; the sort's buffer is pooled.
            KeyValueSession[] all = ArrayPool<KeyValueSession>.Shared.Rent(Math.Max(_sessions.Count, 1) + 16);
            int count = 0;
            foreach (KeyValuePair<long, KeyValueSession> entry in _sessions)
            {
                if (count == all.Length)
                {
                    break;
                }

                all[count++] = entry.Value;
            }

            Array.Sort(all, 0, count, SessionById.Instance);
            for (int i = 0; i < count; i++)
            {
                if (OfType(all[i], type))
                {
                    WriteLine(text, all[i], now);
                }
            }

            Array.Clear(all, 0, count);
            ArrayPool<KeyValueSession>.Shared.Return(all);
        }

        RespWriter.Bulk(output, text.WrittenSpan);
    }

    private static bool OfType(KeyValueSession session, int type) => type switch
    {
        0 => session.Subscriptions == 0,
        1 => session.Subscriptions > 0,
        2 => false,
        _ => true,
    };

    private static void SetInfo(KeyValueSession session, RespCommand command, PipeWriter output)
    {
        if (!Arity(command, output, 4, "setinfo"))
        {
            return;
        }

        ReadOnlySpan<byte> attribute = command[2];
        ReadOnlySpan<byte> value = command[3];
        bool library = Is(attribute, "LIB-NAME"u8);
        if (!library && !Is(attribute, "LIB-VER"u8))
        {
            RespWriter.Error(output, $"ERR Unrecognized option '{Printable(attribute)}'");
            return;
        }

        foreach (byte b in value)
        {
            if (b is < (byte)'!' or > (byte)'~')
            {
                RespWriter.Error(output, $"ERR {(library ? "lib-name" : "lib-ver")} cannot contain spaces, newlines or special characters.");
                return;
            }
        }

        byte[]? stored = value.IsEmpty ? null : value.ToArray();
        if (library)
        {
            session.LibraryName = stored;
        }
        else
        {
            session.LibraryVersion = stored;
        }

        RespWriter.Raw(output, RespWriter.Ok);
    }

    private static bool ValidName(ReadOnlySpan<byte> name, PipeWriter output)
    {
        foreach (byte b in name)
        {
            if (b is < (byte)'!' or > (byte)'~')
            {
                RespWriter.Error(output, "ERR Client names cannot contain spaces, newlines or special characters.");
                return false;
            }
        }

        return true;
    }

    /// <summary>One client's line, in Redis 7's field order, the fields that mean something here, ending in LF.</summary>
    private void WriteLine(ArrayBufferWriter<byte> text, KeyValueSession session, long now)
    {
        Microsoft.AspNetCore.Connections.ConnectionContext connection = session.Connection;
        Field(text, "id="u8, session.Id);
        text.Write(" addr="u8);
        WriteAddress(text, connection.RemoteEndPoint, connection.LocalEndPoint);
        text.Write(" laddr="u8);
        WriteAddress(text, connection.LocalEndPoint, null);
        Field(text, " fd="u8, session.FileDescriptor);
        text.Write(" name="u8);
        text.Write(session.Name);
        Field(text, " age="u8, (long)time.GetElapsedTime(session.StartedAt, now).TotalSeconds);
        Field(text, " idle="u8, (long)time.GetElapsedTime(session.LastCommandAt, now).TotalSeconds);
        text.Write(" flags="u8);
        bool unix = connection.LocalEndPoint is UnixDomainSocketEndPoint;
        bool pubSub = session.Subscriptions > 0;
        if (pubSub)
        {
            text.Write("P"u8);
        }

        if (unix)
        {
            text.Write("U"u8);
        }

        if (!pubSub && !unix)
        {
            text.Write("N"u8);
        }

        text.Write(" db=0"u8);
        Field(text, " sub="u8, session.Channels?.Count ?? 0);
        Field(text, " psub="u8, session.Patterns?.Count ?? 0);
        text.Write(" ssub=0 multi=-1 cmd="u8);
        WriteAscii(text, session.LastCommand);
        text.Write(" user=default redir=-1 resp=2 lib-name="u8);
        text.Write(session.LibraryName);
        text.Write(" lib-ver="u8);
        text.Write(session.LibraryVersion);
        text.Write("\n"u8);
    }

    /// <summary>Redis's <c>ip:port</c>, with IPv6 in brackets; a Unix socket as <c>path:0</c> (a client's own is unnamed: the server's path).</summary>
    private static void WriteAddress(ArrayBufferWriter<byte> text, EndPoint? address, EndPoint? fallback)
    {
        switch (address)
        {
            case IPEndPoint ip:
                IPAddress host = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
                bool v6 = host.AddressFamily == AddressFamily.InterNetworkV6;
                if (v6)
                {
                    text.Write("["u8);
                }

                Span<byte> span = text.GetSpan(64);
                host.TryFormat(span, out int written);
                text.Advance(written);
                text.Write(v6 ? "]:"u8 : ":"u8);
                Number(text, ip.Port);
                break;
            case UnixDomainSocketEndPoint unix:
                string path = unix.ToString();
                if (path.Length == 0 && fallback is UnixDomainSocketEndPoint server)
                {
                    path = server.ToString();
                }

                WriteAscii(text, path);
                text.Write(":0"u8);
                break;
            case null:
                text.Write("?:0"u8);
                break;
            default:
                WriteAscii(text, address.ToString() ?? "?");
                text.Write(":0"u8);
                break;
        }
    }

    private static void Field(ArrayBufferWriter<byte> text, ReadOnlySpan<byte> name, long value)
    {
        text.Write(name);
        Number(text, value);
    }

    private static void Number(ArrayBufferWriter<byte> text, long value)
    {
        Span<byte> span = text.GetSpan(20);
        value.TryFormat(span, out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
        text.Advance(written);
    }

    private static void WriteAscii(ArrayBufferWriter<byte> text, string value)
    {
        Span<byte> span = text.GetSpan(Encoding.UTF8.GetMaxByteCount(value.Length));
        text.Advance(Encoding.UTF8.GetBytes(value, span));
    }

    private static bool Arity(RespCommand command, PipeWriter output, int arity, string name)
    {
        if (command.Count == arity)
        {
            return true;
        }

        RespWriter.Error(output, $"ERR wrong number of arguments for 'client|{name}' command");
        return false;
    }

    private static bool Is(ReadOnlySpan<byte> value, ReadOnlySpan<byte> upperCase) => Ascii.EqualsIgnoreCase(value, upperCase);

    private static string Printable(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 128)]).Replace('\r', ' ').Replace('\n', ' ');

    private sealed class SessionById : IComparer<KeyValueSession>
    {
        public static readonly SessionById Instance = new();

        public int Compare(KeyValueSession? x, KeyValueSession? y) => (x?.Id ?? 0).CompareTo(y?.Id ?? 0);
    }
}
