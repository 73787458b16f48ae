using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.Internal;

namespace Transport;

/// <summary>
/// The directory of live connections, server-wide and per endpoint: find one by id or tag, list them, and send to
/// one, to a tag, to an endpoint or to everyone, through each connection's bounded outbox. The host registers every
/// connection it accepts and unregisters it after its protocol returned; get the registry from dependency injection
/// (it is a singleton), and a connection's own entry with <c>connection.Features.Get&lt;RegisteredConnection&gt;()</c>.
/// </summary>
/// <remarks>
/// <para>
/// Lists are live, never snapshots: a connection that was unregistered, or disconnected as a slow consumer, before a
/// walk reaches it is not returned, so a broadcast never counts a connection that is gone.
/// </para>
/// <para>
/// For a set you send to often (a channel, a room), keep a <see cref="ConnectionGroup"/>: sending to it walks an
/// array without allocating. Tags are for finding connections by a label you set (a user, a device).
/// </para>
/// </remarks>
public sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<string, RegisteredConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConnectionGroup> _tags = new(StringComparer.Ordinal);
    private readonly Lock _tagLock = new();
    private readonly ILogger _logger;
    private readonly RegistryMetrics _metrics;

    /// <summary>Creates a registry with the default options (the host creates one for you).</summary>
    public ConnectionRegistry()
        : this(new ConnectionRegistryOptions())
    {
    }

    /// <summary>Creates a registry.</summary>
    /// <param name="options">Outbox size and default slow-consumer policy.</param>
    /// <param name="meterFactory">Creates the <c>Transport</c> meter for the outbox metrics; a private meter when null.</param>
    /// <param name="logger">Logs slow consumers (Debug) and failures; none when null.</param>
    public ConnectionRegistry(ConnectionRegistryOptions options, IMeterFactory? meterFactory = null, ILogger<ConnectionRegistry>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxOutboxSize, 1, nameof(options));
        Options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _metrics = new RegistryMetrics(meterFactory, this);
    }

    /// <summary>The options.</summary>
    public ConnectionRegistryOptions Options { get; }

    /// <summary>How many connections are registered.</summary>
    public int Count => _connections.Count;

    /// <summary>
    /// Registers a connection; the host does this for every connection it accepts. Also sets the entry as the
    /// connection's <see cref="RegisteredConnection"/> feature. Dispose the entry to unregister it.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="endpoint">The name of the endpoint that accepted it.</param>
    /// <returns>The connection's entry.</returns>
    /// <exception cref="ArgumentException">A connection with the same id is registered.</exception>
    public RegisteredConnection Register(ConnectionContext connection, string endpoint)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(endpoint);
        var registered = new RegisteredConnection(this, connection, endpoint);
        if (!_connections.TryAdd(registered.ConnectionId, registered))
        {
            throw new ArgumentException($"A connection with id '{registered.ConnectionId}' is already registered.", nameof(connection));
        }

        connection.Features.Set(registered);
        return registered;
    }

    /// <summary>Finds a live connection by id.</summary>
    /// <param name="connectionId">The connection's <see cref="Microsoft.AspNetCore.Connections.BaseConnectionContext.ConnectionId"/>.</param>
    /// <param name="connection">The entry, when found.</param>
    /// <returns><see langword="true"/> when it is registered and open.</returns>
    public bool TryGet(string connectionId, [NotNullWhen(true)] out RegisteredConnection? connection)
    {
        ArgumentNullException.ThrowIfNull(connectionId);
        if (_connections.TryGetValue(connectionId, out connection) && connection.IsOpen)
        {
            return true;
        }

        connection = null;
        return false;
    }

    /// <summary>The entry of <paramref name="connection"/>, if it is registered here.</summary>
    /// <param name="connection">A connection.</param>
    /// <returns>Its entry, or <see langword="null"/>.</returns>
    public RegisteredConnection? Find(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        RegisteredConnection? registered = connection.Features.Get<RegisteredConnection>();
        return registered?.Registry == this ? registered : null;
    }

    /// <summary>The open connections, read live (see the remarks on <see cref="ConnectionRegistry"/>).</summary>
    /// <param name="endpoint">Only those of this endpoint; all when <see langword="null"/>.</param>
    /// <returns>The connections.</returns>
    public IEnumerable<RegisteredConnection> GetConnections(string? endpoint = null)
    {
        foreach (KeyValuePair<string, RegisteredConnection> entry in _connections)
        {
            RegisteredConnection connection = entry.Value;
            if (connection.IsOpen && (endpoint is null || string.Equals(connection.Endpoint, endpoint, StringComparison.OrdinalIgnoreCase)))
            {
                yield return connection;
            }
        }
    }

    /// <summary>The open connections that have <paramref name="tag"/>, read live.</summary>
    /// <param name="tag">The tag.</param>
    /// <returns>The connections.</returns>
    public IEnumerable<RegisteredConnection> GetTagged(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        return _tags.TryGetValue(tag, out ConnectionGroup? group) ? group.Members : [];
    }

    /// <summary>Queues <paramref name="message"/> for every connection that has <paramref name="tag"/>.</summary>
    /// <param name="tag">The tag.</param>
    /// <param name="message">The bytes, as they go on the wire.</param>
    /// <param name="policy">What to do when an outbox is full; <see langword="null"/> for the default.</param>
    /// <param name="cancellationToken">Cancels a <see cref="SlowConsumerPolicy.Wait"/>.</param>
    /// <returns>How many connections it was queued for (see <see cref="ConnectionGroup.SendAsync"/>).</returns>
    public ValueTask<int> SendToTaggedAsync(string tag, ReadOnlyMemory<byte> message, SlowConsumerPolicy? policy = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tag);
        return _tags.TryGetValue(tag, out ConnectionGroup? group)
            ? group.SendAsync(message, policy, cancellationToken)
            : new ValueTask<int>(0);
    }

    /// <summary>Queues <paramref name="message"/> for every open connection, or every one of an endpoint.</summary>
    /// <param name="message">The bytes, as they go on the wire.</param>
    /// <param name="endpoint">Only the connections of this endpoint; all when <see langword="null"/>.</param>
    /// <param name="policy">What to do when an outbox is full; <see langword="null"/> for the default.</param>
    /// <param name="cancellationToken">Cancels a <see cref="SlowConsumerPolicy.Wait"/>.</param>
    /// <returns>How many connections it was queued for.</returns>
    public async ValueTask<int> BroadcastAsync(ReadOnlyMemory<byte> message, string? endpoint = null, SlowConsumerPolicy? policy = null,
        CancellationToken cancellationToken = default)
    {
        int sent = 0;
        foreach (RegisteredConnection connection in GetConnections(endpoint))
        {
            if (await connection.SendAsync(message, policy, cancellationToken).ConfigureAwait(false))
            {
                sent++;
            }
        }

        return sent;
    }

    internal bool TryGetTagGroup(string tag, [NotNullWhen(true)] out ConnectionGroup? group)
    {
        ArgumentNullException.ThrowIfNull(tag);
        return _tags.TryGetValue(tag, out group);
    }

    internal bool AddTag(RegisteredConnection connection, string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        lock (_tagLock)
        {
            ConnectionGroup group = _tags.GetOrAdd(tag, static t => new ConnectionGroup(t));
            bool added = group.Add(connection);
            if (group.Count == 0)
            {
                _tags.TryRemove(KeyValuePair.Create(tag, group));
            }

            return added;
        }
    }

    internal bool RemoveTag(RegisteredConnection connection, string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        lock (_tagLock)
        {
            if (!_tags.TryGetValue(tag, out ConnectionGroup? group) || !group.Remove(connection))
            {
                return false;
            }

            if (group.Count == 0)
            {
                _tags.TryRemove(KeyValuePair.Create(tag, group));
            }

            return true;
        }
    }

    internal void RemoveTagIfEmpty(ConnectionGroup group)
    {
        lock (_tagLock)
        {
            if (group.Count == 0)
            {
                _tags.TryRemove(KeyValuePair.Create(group.Tag!, group));
            }
        }
    }

    internal void Unregister(RegisteredConnection connection) =>
        _connections.TryRemove(KeyValuePair.Create(connection.ConnectionId, connection));

    internal void OnSlowConsumer(RegisteredConnection connection, bool disconnect)
    {
        if (!disconnect)
        {
            _metrics.Dropped.Add(1, new KeyValuePair<string, object?>("transport.endpoint", connection.Endpoint));
            return;
        }

        _metrics.Disconnected.Add(1, new KeyValuePair<string, object?>("transport.endpoint", connection.Endpoint));
        RegistryLog.SlowConsumerDisconnected(_logger, connection.ConnectionId, connection.Endpoint, connection.MaxOutboxSize);
        try
        {
            connection.Connection.Abort(new ConnectionAbortedException(
                $"Disconnected as a slow consumer: more than {connection.MaxOutboxSize} bytes were queued for it."));
        }
        catch (Exception ex)
        {
            // A transport's Abort is not supposed to throw; if one does, the sender must not fail with it.
            RegistryLog.AbortFailed(_logger, connection.ConnectionId, ex);
        }
    }

    internal void OnDrainFailed(RegisteredConnection connection, Exception exception)
    {
        if (exception is ConnectionAbortedException or ConnectionResetException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            // The connection ended (aborted, reset, or its output completed) while messages were queued: a normal end.
            RegistryLog.OutputGone(_logger, connection.ConnectionId, exception.Message);
        }
        else
        {
            RegistryLog.DrainFailed(_logger, connection.ConnectionId, exception);
        }
    }

    internal IEnumerable<Measurement<long>> MeasureOutboxes(bool bytes)
    {
        var byEndpoint = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        foreach (KeyValuePair<string, RegisteredConnection> entry in _connections)
        {
            RegisteredConnection connection = entry.Value;
            byEndpoint[connection.Endpoint] = byEndpoint.GetValueOrDefault(connection.Endpoint)
                + (bytes ? connection.QueuedBytes : connection.QueuedMessages);
        }

        foreach ((string endpoint, long value) in byEndpoint)
        {
            yield return new Measurement<long>(value, new KeyValuePair<string, object?>("transport.endpoint", endpoint));
        }
    }
}
