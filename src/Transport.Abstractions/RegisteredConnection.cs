using Microsoft.AspNetCore.Connections;
using Transport.Internal;

namespace Transport;

/// <summary>
/// A live connection in a <see cref="ConnectionRegistry"/>: send to it from anywhere, tag it, put it in groups.
/// The host registers every connection it accepts; a protocol finds its own with
/// <c>connection.Features.Get&lt;RegisteredConnection&gt;()</c> (or <see cref="ConnectionRegistry.Find"/>), other
/// code finds it by id, tag or group.
/// </summary>
/// <remarks>
/// <para>
/// One writer at a time: what other code sends is queued in this connection's bounded outbox and written to its
/// output only while its own protocol is not writing, never in the middle of a reply. A protocol derived from
/// <c>FramedProtocol</c> takes part automatically; a hand-written <see cref="ConnectionHandler"/> that writes its
/// own output as well wraps each reply in <see cref="AcquireOutputAsync"/> / <see cref="ReleaseOutput"/>.
/// </para>
/// <para>
/// Closing: when the host unregisters the connection (after its protocol returned) it leaves every group and tag,
/// later sends return <see langword="false"/>, and queued messages are dropped.
/// </para>
/// </remarks>
public sealed class RegisteredConnection : IAsyncDisposable
{
    private readonly ConnectionOutbox _outbox;

    // Guarded by lock (_outbox): which groups this connection is in, and its slot in each.
    private Dictionary<ConnectionGroup, int>? _memberships;
    private bool _leftGroups;
    private int _disposed;

    internal RegisteredConnection(ConnectionRegistry registry, ConnectionContext connection, string endpoint)
    {
        Registry = registry;
        Connection = connection;
        Endpoint = endpoint;
        ConnectionId = connection.ConnectionId;
        _outbox = new ConnectionOutbox(this, datagram: connection.LocalEndPoint is UdpEndPoint, registry.Options.MaxOutboxSize);
    }

    /// <summary>The registry this connection is in.</summary>
    public ConnectionRegistry Registry { get; }

    /// <summary>The connection.</summary>
    public ConnectionContext Connection { get; }

    /// <summary>The connection's id, as when it was registered.</summary>
    public string ConnectionId { get; }

    /// <summary>The name of the endpoint that accepted it (the <c>Transport:Endpoints</c> key).</summary>
    public string Endpoint { get; }

    /// <summary>
    /// Whether sends can still reach it: <see langword="false"/> once it is unregistered, or disconnected as a slow
    /// consumer.
    /// </summary>
    public bool IsOpen => !_outbox.IsClosed;

    /// <summary>
    /// The most bytes queued for this connection and not yet written to its output; past it the slow-consumer policy
    /// applies. A protocol sets it for its kind of client, like Redis's per-class output buffer limits.
    /// </summary>
    /// <remarks>Defaults to <see cref="ConnectionRegistryOptions.MaxOutboxSize"/>; at least 1.</remarks>
    public int MaxOutboxSize
    {
        get => _outbox.MaxSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _outbox.MaxSize = value;
        }
    }

    /// <summary>The bytes queued in the outbox now.</summary>
    public int QueuedBytes => _outbox.PendingBytes;

    /// <summary>The messages queued in the outbox now.</summary>
    public int QueuedMessages => _outbox.PendingMessages;

    /// <summary>The tags set on this connection (a copy).</summary>
    public IReadOnlyList<string> Tags
    {
        get
        {
            lock (_outbox)
            {
                return _memberships is null ? [] : [.. _memberships.Keys.Where(g => g.Tag is not null).Select(g => g.Tag!)];
            }
        }
    }

    internal ConnectionOutbox Outbox => _outbox;

    /// <summary>
    /// Queues <paramref name="message"/> for this connection. It is written whole, between two of the protocol's own
    /// replies, with the next messages in one flush (on a datagram connection: as one datagram of its own).
    /// </summary>
    /// <param name="message">The bytes, exactly as they go on the wire; copied before the call returns unless it has to wait.</param>
    /// <param name="policy">What to do when the outbox is full; <see langword="null"/> for the registry's default.</param>
    /// <param name="cancellationToken">Cancels a <see cref="SlowConsumerPolicy.Wait"/>.</param>
    /// <returns>
    /// <see langword="true"/> when queued; <see langword="false"/> when dropped, disconnected or closed. It completes at
    /// once unless the policy is <see cref="SlowConsumerPolicy.Wait"/> and the outbox is full; then keep
    /// <paramref name="message"/> unchanged until it completes.
    /// </returns>
    public ValueTask<bool> SendAsync(ReadOnlyMemory<byte> message, SlowConsumerPolicy? policy = null, CancellationToken cancellationToken = default)
    {
        EnqueueResult result = Enqueue(message.Span, policy ?? Registry.Options.SlowConsumerPolicy);
        return result == EnqueueResult.Full
            ? SendWhenThereIsRoomAsync(message, cancellationToken)
            : new ValueTask<bool>(result == EnqueueResult.Queued);
    }

    /// <summary>
    /// Sets a tag: a label other code finds this connection by (<see cref="ConnectionRegistry.GetTagged"/>,
    /// <see cref="ConnectionRegistry.SendToTaggedAsync"/>), such as a user name or a device id.
    /// </summary>
    /// <param name="tag">The tag, case-sensitive.</param>
    /// <returns><see langword="false"/> when it already had the tag or is closed.</returns>
    public bool AddTag(string tag) => Registry.AddTag(this, tag);

    /// <summary>Removes a tag.</summary>
    /// <param name="tag">The tag.</param>
    /// <returns><see langword="false"/> when it did not have the tag.</returns>
    public bool RemoveTag(string tag) => Registry.RemoveTag(this, tag);

    /// <summary>Whether this connection has <paramref name="tag"/>.</summary>
    /// <param name="tag">The tag.</param>
    /// <returns><see langword="true"/> when it has it.</returns>
    public bool HasTag(string tag)
    {
        if (!Registry.TryGetTagGroup(tag, out ConnectionGroup? group))
        {
            return false;
        }

        lock (_outbox)
        {
            return _memberships is not null && _memberships.ContainsKey(group);
        }
    }

    /// <summary>
    /// Takes the connection's output for the caller: queued messages are not written until
    /// <see cref="ReleaseOutput"/>. For a protocol that writes its own output; <c>FramedProtocol</c> does this around
    /// each batch of messages. Waits only while queued messages are being flushed to a slow peer.
    /// </summary>
    /// <returns>A task that completes when the caller owns the output.</returns>
    public ValueTask AcquireOutputAsync() => _outbox.AcquireAsync();

    /// <summary>
    /// Writes the queued messages into the output now, ahead of the owner's next bytes (not flushed): call it between
    /// two replies, or before flushing, while owning the output. On a datagram connection it does nothing: queued
    /// messages go out as datagrams of their own after <see cref="ReleaseOutput"/>.
    /// </summary>
    public void WriteQueued() => _outbox.WriteQueued(Connection.Transport.Output);

    /// <summary>Gives the output back; queued messages are written from now on.</summary>
    /// <exception cref="InvalidOperationException">The caller did not own the output.</exception>
    public void ReleaseOutput() => _outbox.Release();

    /// <summary>
    /// Unregisters the connection: it leaves its groups and tags, is no longer found, and queued messages are dropped.
    /// Completes once queued messages are no longer being written, so the connection can then be disposed.
    /// The host calls it after the protocol returned.
    /// </summary>
    /// <returns>A task that completes when the connection is unregistered.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Task drained = _outbox.CloseAsync(cancelFlush: true);
        if (Connection.Features.Get<RegisteredConnection>() == this)
        {
            Connection.Features.Set<RegisteredConnection>(null);
        }

        Registry.Unregister(this);
        LeaveAllGroups();
        await drained.ConfigureAwait(false);
    }

    /// <summary>Queues with the effective policy; counts drops; disconnects a slow consumer.</summary>
    internal EnqueueResult Enqueue(ReadOnlySpan<byte> message, SlowConsumerPolicy policy)
    {
        EnqueueResult result = _outbox.TryEnqueue(message, policy);
        if (result is EnqueueResult.Dropped or EnqueueResult.Disconnected)
        {
            Registry.OnSlowConsumer(this, result == EnqueueResult.Disconnected);
        }

        return result;
    }

    internal async ValueTask<bool> SendWhenThereIsRoomAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        while (true)
        {
            await _outbox.WaitForSpaceAsync(message.Length, cancellationToken).ConfigureAwait(false);
            EnqueueResult result = Enqueue(message.Span, SlowConsumerPolicy.Wait);
            if (result != EnqueueResult.Full)
            {
                return result == EnqueueResult.Queued;
            }
        }
    }

    internal bool TryAddMembership(ConnectionGroup group, int slot)
    {
        lock (_outbox)
        {
            if (_leftGroups || _outbox.IsClosed)
            {
                return false;
            }

            return (_memberships ??= []).TryAdd(group, slot);
        }
    }

    internal bool TryRemoveMembership(ConnectionGroup group, out int slot)
    {
        lock (_outbox)
        {
            slot = -1;
            return _memberships is not null && _memberships.Remove(group, out slot);
        }
    }

    private void LeaveAllGroups()
    {
        KeyValuePair<ConnectionGroup, int>[] memberships;
        lock (_outbox)
        {
            _leftGroups = true;
            if (_memberships is null)
            {
                return;
            }

            memberships = [.. _memberships];
            _memberships.Clear();
        }

        foreach ((ConnectionGroup group, int slot) in memberships)
        {
            group.RemoveSlot(slot, this);
            if (group.Tag is not null)
            {
                Registry.RemoveTagIfEmpty(group);
            }
        }
    }
}
