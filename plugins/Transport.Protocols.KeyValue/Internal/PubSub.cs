using System.Buffers;
using System.Collections.Concurrent;
using System.Text;

namespace Transport.Protocols.KeyValue.Internal;

/// <summary>
/// Redis pub/sub over the connection registry: a <see cref="ConnectionGroup"/> per channel and per pattern, created at
/// the first subscriber and dropped with the last. PUBLISH formats the pushed message once and copies it into each
/// subscriber's outbox; a subscriber that stops reading is disconnected when its outbox passes its limit, as Redis's
/// <c>client-output-buffer-limit pubsub</c> does, so the publisher never waits and memory stays bounded.
/// </summary>
internal sealed class PubSub
{
    private readonly ConcurrentDictionary<byte[], ConnectionGroup> _channels = new(ByteKeyComparer.Instance);
    private readonly ConcurrentDictionary<byte[], ConnectionGroup>.AlternateLookup<ReadOnlySpan<byte>> _channelsBySpan;

    // Subscribe and unsubscribe hold it so a group is never dropped while a subscriber joins it; PUBLISH does not.
    private readonly Lock _lock = new();
    private (byte[] Pattern, ConnectionGroup Group)[] _patterns = [];

    public PubSub()
    {
        _channelsBySpan = _channels.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>SUBSCRIBE / PSUBSCRIBE: one reply per channel or pattern, with the connection's subscription count.</summary>
    public void Subscribe(KeyValueSession session, RespCommand command, IBufferWriter<byte> output, bool patterns, int outputLimit)
    {
        RegisteredConnection registration = session.Registration!;
        if (session.Subscriptions == 0)
        {
            registration.MaxOutboxSize = outputLimit;
        }

        HashSet<byte[]> set = patterns ? session.Patterns ??= KeyValueSession.NewSet() : session.Channels ??= KeyValueSession.NewSet();
        for (int i = 1; i < command.Count; i++)
        {
            ReadOnlySpan<byte> name = command[i];
            if (!set.GetAlternateLookup<ReadOnlySpan<byte>>().Contains(name))
            {
                byte[] key = name.ToArray();
                set.Add(key);
                Join(registration, key, patterns);
            }

            WriteSubscription(output, patterns ? "psubscribe"u8 : "subscribe"u8, name, session.Subscriptions);
        }
    }

    /// <summary>UNSUBSCRIBE / PUNSUBSCRIBE: the named ones, or all when none is named.</summary>
    public void Unsubscribe(KeyValueSession session, RespCommand command, IBufferWriter<byte> output, bool patterns)
    {
        HashSet<byte[]>? set = patterns ? session.Patterns : session.Channels;
        ReadOnlySpan<byte> kind = patterns ? "punsubscribe"u8 : "unsubscribe"u8;
        if (command.Count > 1)
        {
            for (int i = 1; i < command.Count; i++)
            {
                if (set is not null && set.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(command[i], out byte[]? key))
                {
                    set.Remove(key);
                    Leave(session.Registration!, key, patterns);
                }

                WriteSubscription(output, kind, command[i], session.Subscriptions);
            }

            return;
        }

        if (set is null || set.Count == 0)
        {
            RespWriter.ArrayHeader(output, 3);
            RespWriter.Bulk(output, kind);
            RespWriter.Raw(output, RespWriter.NullBulk);
            RespWriter.Integer(output, session.Subscriptions);
            return;
        }

        foreach (byte[] key in set.ToArray())
        {
            set.Remove(key);
            Leave(session.Registration!, key, patterns);
            WriteSubscription(output, kind, key, session.Subscriptions);
        }
    }

    /// <summary>Leaves every channel and pattern, without replies: RESET, and the end of the connection.</summary>
    public void UnsubscribeAll(KeyValueSession session)
    {
        if (session.Registration is not { } registration)
        {
            return;
        }

        foreach ((HashSet<byte[]>? set, bool patterns) in new[] { (session.Channels, false), (session.Patterns, true) })
        {
            if (set is null)
            {
                continue;
            }

            foreach (byte[] key in set)
            {
                Leave(registration, key, patterns);
            }

            set.Clear();
        }
    }

    /// <summary>PUBLISH: queues the message for every subscriber of the channel and of each matching pattern.</summary>
    /// <returns>How many connections it was queued for (a connection subscribed twice counts twice, as in Redis).</returns>
    public int Publish(KeyValueSession publisher, ReadOnlySpan<byte> channel, ReadOnlySpan<byte> message)
    {
        int receivers = 0;
        ArrayBufferWriter<byte> scratch = publisher.Scratch;
        if (_channelsBySpan.TryGetValue(channel, out ConnectionGroup? group) && group.Count > 0)
        {
            scratch.ResetWrittenCount();
            RespWriter.ArrayHeader(scratch, 3);
            RespWriter.Bulk(scratch, "message"u8);
            RespWriter.Bulk(scratch, channel);
            RespWriter.Bulk(scratch, message);
            receivers += Queued(group.SendAsync(scratch.WrittenMemory));
        }

        foreach ((byte[] pattern, ConnectionGroup patternGroup) in Volatile.Read(ref _patterns))
        {
            if (patternGroup.Count > 0 && GlobPattern.IsMatch(pattern, channel))
            {
                scratch.ResetWrittenCount();
                RespWriter.ArrayHeader(scratch, 4);
                RespWriter.Bulk(scratch, "pmessage"u8);
                RespWriter.Bulk(scratch, pattern);
                RespWriter.Bulk(scratch, channel);
                RespWriter.Bulk(scratch, message);
                receivers += Queued(patternGroup.SendAsync(scratch.WrittenMemory));
            }
        }

        return receivers;
    }

    /// <summary>PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT.</summary>
    public void Introspect(RespCommand command, IBufferWriter<byte> output)
    {
        ReadOnlySpan<byte> sub = command[1];
        if (Ascii.EqualsIgnoreCase(sub, "CHANNELS"u8) && command.Count <= 3)
        {
            var names = new List<byte[]>();
            foreach (KeyValuePair<byte[], ConnectionGroup> channel in _channels)
            {
                if (channel.Value.Count > 0 && (command.Count == 2 || GlobPattern.IsMatch(command[2], channel.Key)))
                {
                    names.Add(channel.Key);
                }
            }

            RespWriter.ArrayHeader(output, names.Count);
            foreach (byte[] name in names)
            {
                RespWriter.Bulk(output, name);
            }
        }
        else if (Ascii.EqualsIgnoreCase(sub, "NUMSUB"u8))
        {
            RespWriter.ArrayHeader(output, (command.Count - 2) * 2);
            for (int i = 2; i < command.Count; i++)
            {
                RespWriter.Bulk(output, command[i]);
                RespWriter.Integer(output, _channelsBySpan.TryGetValue(command[i], out ConnectionGroup? group) ? group.Count : 0);
            }
        }
        else if (Ascii.EqualsIgnoreCase(sub, "NUMPAT"u8) && command.Count == 2)
        {
            RespWriter.Integer(output, Volatile.Read(ref _patterns).Length);
        }
        else
        {
            string name = Encoding.UTF8.GetString(sub[..Math.Min(sub.Length, 128)]).Replace('\r', ' ').Replace('\n', ' ');
            RespWriter.Error(output, Ascii.EqualsIgnoreCase(sub, "CHANNELS"u8) || Ascii.EqualsIgnoreCase(sub, "NUMPAT"u8)
                ? $"ERR wrong number of arguments for 'pubsub|{name.ToLowerInvariant()}' command"
                : $"ERR unknown subcommand '{name}'. Try PUBSUB HELP.");
        }
    }

    private static int Queued(ValueTask<int> send) =>
        // Channel groups disconnect slow consumers, which never waits: the send is always complete here.
        send.IsCompletedSuccessfully ? send.Result : throw new InvalidOperationException("A pub/sub send waited for a subscriber.");

    private static void WriteSubscription(IBufferWriter<byte> output, ReadOnlySpan<byte> kind, ReadOnlySpan<byte> name, int count)
    {
        RespWriter.ArrayHeader(output, 3);
        RespWriter.Bulk(output, kind);
        RespWriter.Bulk(output, name);
        RespWriter.Integer(output, count);
    }

    private void Join(RegisteredConnection registration, byte[] key, bool patterns)
    {
        lock (_lock)
        {
            ConnectionGroup group;
            if (!patterns)
            {
                group = _channels.GetOrAdd(key, static _ => new ConnectionGroup(SlowConsumerPolicy.Disconnect));
            }
            else if (FindPattern(key) is { } existing)
            {
                group = existing;
            }
            else
            {
                group = new ConnectionGroup(SlowConsumerPolicy.Disconnect);
                _patterns = [.. _patterns, (key, group)];
            }

            group.Add(registration);
            DropIfEmpty(key, group, patterns);
        }
    }

    private void Leave(RegisteredConnection registration, byte[] key, bool patterns)
    {
        lock (_lock)
        {
            ConnectionGroup? group = patterns ? FindPattern(key) : _channels.GetValueOrDefault(key);
            if (group is not null)
            {
                group.Remove(registration);
                DropIfEmpty(key, group, patterns);
            }
        }
    }

    private void DropIfEmpty(byte[] key, ConnectionGroup group, bool patterns)
    {
        if (group.Count > 0)
        {
            return;
        }

        if (patterns)
        {
            _patterns = [.. _patterns.Where(p => p.Group != group)];
        }
        else
        {
            _channels.TryRemove(KeyValuePair.Create(key, group));
        }
    }

    private ConnectionGroup? FindPattern(byte[] key)
    {
        foreach ((byte[] pattern, ConnectionGroup group) in _patterns)
        {
            if (pattern.AsSpan().SequenceEqual(key))
            {
                return group;
            }
        }

        return null;
    }
}
