using Transport.Internal;

namespace Transport;

/// <summary>
/// A set of live connections to send to at once: a chat room, a pub/sub channel, a game match, a device fleet.
/// Create one per set and keep it where your protocol keeps its shared state; a member leaves by itself when its
/// connection closes, so the group never holds a closed connection.
/// </summary>
/// <remarks>
/// Thread-safe. A send walks the members without a lock and without allocating: a member removed before the walk
/// reaches it is skipped, one added during the walk may or may not get that message. Adding and removing take a
/// short lock. Each send copies the message into every member's outbox; the sender waits for none of them unless
/// the policy is <see cref="SlowConsumerPolicy.Wait"/>.
/// </remarks>
public sealed class ConnectionGroup
{
    private readonly Lock _lock = new();
    private RegisteredConnection?[] _slots = new RegisteredConnection?[4];
    private int _used;
    private int _count;
    private Stack<int>? _free;

    /// <summary>Creates an empty group.</summary>
    /// <param name="policy">The group's slow-consumer policy; <see langword="null"/> for the registry's default.</param>
    public ConnectionGroup(SlowConsumerPolicy? policy = null)
    {
        Policy = policy;
    }

    internal ConnectionGroup(string tag)
    {
        Tag = tag;
    }

    /// <summary>
    /// What a send to this group does for a member whose outbox is full, unless the call says otherwise;
    /// <see langword="null"/> for the registry's default.
    /// </summary>
    public SlowConsumerPolicy? Policy { get; set; }

    /// <summary>How many connections are in the group.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The members, read live: a connection that left or closed before it is reached is not returned.</summary>
    public IEnumerable<RegisteredConnection> Members
    {
        get
        {
            RegisteredConnection?[] slots = Volatile.Read(ref _slots);
            int used = Math.Min(Volatile.Read(ref _used), slots.Length);
            for (int i = 0; i < used; i++)
            {
                if (Volatile.Read(ref slots[i]) is { IsOpen: true } member)
                {
                    yield return member;
                }
            }
        }
    }

    internal string? Tag { get; }

    /// <summary>Adds a connection.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns><see langword="false"/> when it is already a member, or closed.</returns>
    public bool Add(RegisteredConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        lock (_lock)
        {
            int slot = _free is { Count: > 0 } ? _free.Pop() : _used;
            if (!connection.TryAddMembership(this, slot))
            {
                if (slot != _used)
                {
                    _free!.Push(slot);
                }

                return false;
            }

            if (slot == _used)
            {
                if (_used == _slots.Length)
                {
                    // Walks in progress keep reading the old array; a member they find there is still checked for IsOpen.
                    var larger = new RegisteredConnection?[_slots.Length * 2];
                    _slots.CopyTo(larger, 0);
                    Volatile.Write(ref _slots, larger);
                }

                Volatile.Write(ref _used, _used + 1);
            }

            Volatile.Write(ref _slots[slot], connection);
            Volatile.Write(ref _count, _count + 1);
            return true;
        }
    }

    /// <summary>Removes a connection.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns><see langword="false"/> when it was not a member.</returns>
    public bool Remove(RegisteredConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        lock (_lock)
        {
            if (!connection.TryRemoveMembership(this, out int slot))
            {
                return false;
            }

            ClearSlot(slot);
            return true;
        }
    }

    /// <summary>Whether <paramref name="connection"/> is a member.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns><see langword="true"/> when it is.</returns>
    public bool Contains(RegisteredConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        RegisteredConnection?[] slots = Volatile.Read(ref _slots);
        int used = Math.Min(Volatile.Read(ref _used), slots.Length);
        for (int i = 0; i < used; i++)
        {
            if (ReferenceEquals(Volatile.Read(ref slots[i]), connection))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Queues <paramref name="message"/> for every member (see <see cref="RegisteredConnection.SendAsync"/>).
    /// </summary>
    /// <param name="message">The bytes, exactly as they go on the wire; copied into each member's outbox.</param>
    /// <param name="policy">What to do for a member whose outbox is full; <see langword="null"/> for <see cref="Policy"/>.</param>
    /// <param name="cancellationToken">Cancels a <see cref="SlowConsumerPolicy.Wait"/>.</param>
    /// <returns>
    /// How many members it was queued for. It completes at once unless the policy is <see cref="SlowConsumerPolicy.Wait"/>
    /// and a member's outbox is full; then keep <paramref name="message"/> unchanged until it completes.
    /// </returns>
    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> message, SlowConsumerPolicy? policy = null, CancellationToken cancellationToken = default)
    {
        RegisteredConnection?[] slots = Volatile.Read(ref _slots);
        int used = Math.Min(Volatile.Read(ref _used), slots.Length);
        int sent = 0;
        for (int i = 0; i < used; i++)
        {
            RegisteredConnection? member = Volatile.Read(ref slots[i]);
            if (member is null)
            {
                continue;
            }

            switch (member.Enqueue(message.Span, policy ?? Policy ?? member.Registry.Options.SlowConsumerPolicy))
            {
                case EnqueueResult.Queued:
                    sent++;
                    break;
                case EnqueueResult.Full:
                    return SendToRestAsync(message, slots, i, used, sent, policy, cancellationToken);
            }
        }

        return new ValueTask<int>(sent);
    }

    internal void RemoveSlot(int slot, RegisteredConnection connection)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_slots[slot], connection))
            {
                ClearSlot(slot);
            }
        }
    }

    private void ClearSlot(int slot)
    {
        Volatile.Write(ref _slots[slot], null);
        Volatile.Write(ref _count, _count - 1);
        if (_count == 0)
        {
            // Empty: start again from the front, so a group that churns does not keep its high-water mark.
            Array.Clear(_slots, 0, _used);
            Volatile.Write(ref _used, 0);
            _free?.Clear();
        }
        else
        {
            (_free ??= new Stack<int>()).Push(slot);
        }
    }

    private async ValueTask<int> SendToRestAsync(ReadOnlyMemory<byte> message, RegisteredConnection?[] slots, int from, int used, int sent,
        SlowConsumerPolicy? policy, CancellationToken cancellationToken)
    {
        RegisteredConnection full = slots[from]!;
        if (await full.SendWhenThereIsRoomAsync(message, cancellationToken).ConfigureAwait(false))
        {
            sent++;
        }

        for (int i = from + 1; i < used; i++)
        {
            if (Volatile.Read(ref slots[i]) is { } member
                && await member.SendAsync(message, policy ?? Policy, cancellationToken).ConfigureAwait(false))
            {
                sent++;
            }
        }

        return sent;
    }
}
