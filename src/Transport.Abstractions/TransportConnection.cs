using System.Collections;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Transport;

/// <summary>
/// Base class for a transport's connections: the <see cref="ConnectionContext"/> a protocol sees, with the
/// standard features (id, items, transport pipe, end points, lifetime and close notification) already in
/// <see cref="Features"/>, which is the connection itself (no feature dictionary per connection). A transport derives from it and implements <c>Abort(ConnectionAbortedException)</c>
/// (accepting null, see <see cref="AbortReasonOrDefault"/>) and <see cref="CloseTransportAsync"/>, the transport's part
/// of <see cref="DisposeAsync"/>.
/// </summary>
public abstract class TransportConnection : ConnectionContext,
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature,
    IConnectionLifetimeNotificationFeature,
    IFeatureCollection
{
    private static readonly KeyValuePair<Type, object?>[] s_noFeatures = [];

    private static long s_lastId = DateTime.UtcNow.Ticks;

    // The connection is its own feature collection: the standard features are the connection itself, and the few a
    // layer adds (the registry's entry, TLS, PROXY) or replaces live in this small copy-on-write array, so an idle
    // connection holds one short array instead of a dictionary (about 550 bytes less each).
    private KeyValuePair<Type, object?>[] _extraFeatures = s_noFeatures;
    private int _featureRevision;

    // Created on first use: a connection that nobody asks for tokens (most short-lived ones) allocates none of these.
    private CancellationTokenSource? _closeRequested;
    private CancellationTokenSource? _closed;
    private IDictionary<object, object?>? _items;
    private string? _connectionId;
    private int _closeRequestedFlag;
    private int _closedFlag;
    private int _disposedFlag;
    private readonly ILogger _logger;

    /// <summary>Creates a connection that does not log (a callback that throws is still caught).</summary>
    protected TransportConnection()
        : this(null)
    {
    }

    /// <summary>Creates a connection.</summary>
    /// <param name="logger">
    /// Where the connection reports failures of code it runs for others: an exception thrown by a callback
    /// registered on <see cref="ConnectionClosed"/> or <see cref="ConnectionClosedRequested"/>. Usually the
    /// transport's own logger.
    /// </param>
    protected TransportConnection(ILogger? logger)
    {
        _logger = logger ?? NullLogger.Instance;
    }

    /// <inheritdoc />
    public override string ConnectionId
    {
        get => _connectionId ??= Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        set => _connectionId = value;
    }

    /// <inheritdoc />
    public override IFeatureCollection Features => this;

    /// <inheritdoc />
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    /// <inheritdoc />
    public override IDuplexPipe Transport { get; set; } = null!;

    /// <inheritdoc />
    public override CancellationToken ConnectionClosed
    {
        get => LazyToken(ref _closed, ref _closedFlag, closed: true);
        set => throw new NotSupportedException("The transport owns ConnectionClosed.");
    }

    /// <inheritdoc />
    public CancellationToken ConnectionClosedRequested
    {
        get => LazyToken(ref _closeRequested, ref _closeRequestedFlag, closed: false);
        set => throw new NotSupportedException("The transport owns ConnectionClosedRequested.");
    }

    /// <summary>
    /// Asks the protocol to finish its work and close (e.g. when the host is stopping). The connection is
    /// not closed by this call; a protocol that does not observe <see cref="ConnectionClosedRequested"/>
    /// carries on until the host's shutdown deadline aborts it. Callbacks registered on the token run on the
    /// caller's thread; one that throws is logged, and the others still run.
    /// </summary>
    public void RequestClose() => Signal(ref _closeRequested, ref _closeRequestedFlag, closed: false);

    /// <summary>
    /// Signals <c>ConnectionClosed</c> once, when the peer's side of the connection has
    /// ended. Callbacks registered on the token run on the thread pool, never on the caller's stack; one that
    /// throws is logged with the connection's id, and the others still run.
    /// </summary>
    protected void OnConnectionClosed() => Signal(ref _closed, ref _closedFlag, closed: true);

    /// <summary>
    /// Disposes the connection once; later calls return at once. <see cref="CloseTransportAsync"/> ends the transport's
    /// I/O, then <see cref="ConnectionClosed"/> fires (if the transport has not fired it already) and the connection's
    /// token sources are released.
    /// </summary>
    /// <returns>A task that completes when the transport's I/O has ended.</returns>
    public sealed override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposedFlag, 1) != 0)
        {
            return;
        }

        await CloseTransportAsync().ConfigureAwait(false);
        OnConnectionClosed();

        // ConnectionClosed's source is left to the collector: its cancellation may still be queued, and a disposed
        // source would drop the callbacks it owes. Without a timer or a wait handle it holds nothing to release.
        Volatile.Read(ref _closeRequested)?.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The transport's part of <see cref="DisposeAsync"/>, called once: the protocol is done with the connection, so
    /// complete the transport's ends of the pipes, wait until nothing reads or writes the underlying resource, and
    /// release it.
    /// </summary>
    /// <returns>A task that completes when the transport's I/O has ended.</returns>
    protected abstract ValueTask CloseTransportAsync();

    /// <summary>
    /// The reason to record for <c>Abort(null)</c>. The contract allows null: Kestrel's HTTP stack passes it when it
    /// closes a connection whose peer has gone, and Kestrel's own transport accepts it.
    /// </summary>
    /// <param name="abortReason">The reason the caller gave, if any.</param>
    /// <returns><paramref name="abortReason"/>, or a reason saying the application aborted the connection.</returns>
    protected static ConnectionAbortedException AbortReasonOrDefault(ConnectionAbortedException? abortReason) =>
        abortReason ?? new ConnectionAbortedException("The connection was aborted by the application.");

    // Telemetry, read by the server once the connection has ended. Each count has one writer (the transport's
    // receive loop or send loop), so a plain add is enough; nothing here allocates.
    private long _bytesReceived;
    private long _bytesSent;
    private int _abortCalled;
    private int _resetByPeer;

    /// <summary>Bytes the transport has handed to the protocol.</summary>
    internal long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Bytes the transport has sent for the protocol.</summary>
    internal long BytesSent => Volatile.Read(ref _bytesSent);

    /// <summary>Whether anyone called <c>Abort</c> (the server tells its own aborts apart from the protocol's).</summary>
    internal bool AbortCalled => Volatile.Read(ref _abortCalled) != 0;

    internal void CountReceived(long bytes) => Volatile.Write(ref _bytesReceived, _bytesReceived + bytes);

    internal void CountSent(long bytes) => Volatile.Write(ref _bytesSent, _bytesSent + bytes);

    /// <summary>Whether the transport saw the peer reset the connection, even if the protocol did not rethrow it.</summary>
    internal bool ResetByPeer => Volatile.Read(ref _resetByPeer) != 0;

    /// <summary>
    /// The <c>error.type</c> the connection ended with, when the code that ended it knows better than the exception the
    /// protocol saw (the idle timeout, a failed TLS handshake): one of <see cref="Internal.ConnectionEndReasons"/>.
    /// </summary>
    internal string? EndReason { get; set; }

    internal void MarkAborted() => Volatile.Write(ref _abortCalled, 1);

    internal void MarkReset() => Volatile.Write(ref _resetByPeer, 1);

    /// <summary>Pairs the protocol's ends of the input and output pipes into <see cref="Transport"/>'s type.</summary>
    /// <param name="input">What the protocol reads.</param>
    /// <param name="output">What the protocol writes.</param>
    /// <returns>The duplex pipe.</returns>
    protected static IDuplexPipe CreateDuplexPipe(PipeReader input, PipeWriter output) => new DuplexPipe(input, output);

    /// <summary>
    /// A feature the transport itself provides besides the standard ones (e.g. the socket), or null. Asked only for
    /// types nobody has set on <see cref="Features"/>; a set value, null included, takes precedence.
    /// </summary>
    /// <param name="featureType">The feature's type.</param>
    /// <returns>The feature, or null when the transport has none of that type.</returns>
    protected virtual object? GetTransportFeature(Type featureType) => null;

    /// <summary>The types <see cref="GetTransportFeature"/> answers, for enumerating <see cref="Features"/>.</summary>
    /// <returns>The transport's own feature types (none by default).</returns>
    protected virtual ReadOnlySpan<Type> TransportFeatureTypes => [];

    private static readonly Type[] s_standardFeatures =
    [
        typeof(IConnectionIdFeature),
        typeof(IConnectionTransportFeature),
        typeof(IConnectionItemsFeature),
        typeof(IConnectionLifetimeFeature),
        typeof(IConnectionEndPointFeature),
        typeof(IConnectionLifetimeNotificationFeature),
    ];

    private object? GetDefaultFeature(Type key) =>
        Array.IndexOf(s_standardFeatures, key) >= 0 ? this : GetTransportFeature(key);

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => Volatile.Read(ref _featureRevision);

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            ArgumentNullException.ThrowIfNull(key);
            foreach (KeyValuePair<Type, object?> entry in Volatile.Read(ref _extraFeatures))
            {
                if (entry.Key == key)
                {
                    return entry.Value;
                }
            }

            return GetDefaultFeature(key);
        }
        set
        {
            ArgumentNullException.ThrowIfNull(key);
            SetFeature(key, value);
        }
    }

    TFeature? IFeatureCollection.Get<TFeature>()
        where TFeature : default => (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];

    void IFeatureCollection.Set<TFeature>(TFeature? instance)
        where TFeature : default => SetFeature(typeof(TFeature), instance);

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator() => EnumerateFeatures().GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => EnumerateFeatures().GetEnumerator();

    private IEnumerable<KeyValuePair<Type, object>> EnumerateFeatures()
    {
        KeyValuePair<Type, object?>[] extra = Volatile.Read(ref _extraFeatures);
        foreach (KeyValuePair<Type, object?> entry in extra)
        {
            if (entry.Value is not null)
            {
                yield return new KeyValuePair<Type, object>(entry.Key, entry.Value);
            }
        }

        var defaults = new List<Type>(s_standardFeatures);
        defaults.AddRange(TransportFeatureTypes.ToArray());
        foreach (Type type in defaults)
        {
            if (IndexOf(extra, type) < 0 && GetDefaultFeature(type) is { } feature)
            {
                yield return new KeyValuePair<Type, object>(type, feature);
            }
        }
    }

    private static int IndexOf(KeyValuePair<Type, object?>[] entries, Type key)
    {
        for (int i = 0; i < entries.Length; i++)
        {
            if (entries[i].Key == key)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Copy on write: readers on other threads see the old array or the new one, never a half-written entry.</summary>
    private void SetFeature(Type key, object? value)
    {
        while (true)
        {
            KeyValuePair<Type, object?>[] current = Volatile.Read(ref _extraFeatures);
            int index = IndexOf(current, key);
            KeyValuePair<Type, object?>[] next;
            if (index >= 0)
            {
                next = (KeyValuePair<Type, object?>[])current.Clone();
                next[index] = new KeyValuePair<Type, object?>(key, value);
            }
            else if (value is null && GetDefaultFeature(key) is null)
            {
                // Removing what is not there: nothing to remember.
                Interlocked.Increment(ref _featureRevision);
                return;
            }
            else
            {
                next = new KeyValuePair<Type, object?>[current.Length + 1];
                current.CopyTo(next, 0);
                next[^1] = new KeyValuePair<Type, object?>(key, value);
            }

            if (Interlocked.CompareExchange(ref _extraFeatures, next, current) == current)
            {
                Interlocked.Increment(ref _featureRevision);
                return;
            }
        }
    }

    /// <summary>
    /// The token of a signal that may fire before anyone asks for it: the source is created on first request,
    /// and created cancelled if the signal already fired.
    /// </summary>
    private CancellationToken LazyToken(ref CancellationTokenSource? source, ref int flag, bool closed)
    {
        CancellationTokenSource? existing = Volatile.Read(ref source);
        if (existing is null)
        {
            if (Volatile.Read(ref flag) != 0)
            {
                return new CancellationToken(canceled: true);
            }

            var created = new CancellationTokenSource();
            existing = Interlocked.CompareExchange(ref source, created, null) ?? created;
            if (existing != created)
            {
                created.Dispose();
            }
            else if (Interlocked.CompareExchange(ref flag, 0, 0) != 0)
            {
                // The signal fired while the source was being created: it may have missed it.
                Cancel(existing, closed);
            }
        }

        return existing.Token;
    }

    private void Signal(ref CancellationTokenSource? source, ref int flag, bool closed)
    {
        if (Interlocked.Exchange(ref flag, 1) != 0)
        {
            return;
        }

        if (Volatile.Read(ref source) is { } existing)
        {
            Cancel(existing, closed);
        }
    }

    private void Cancel(CancellationTokenSource source, bool closed)
    {
        if (closed)
        {
            // Callbacks registered by protocols must not run on the transport's I/O stack.
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Connection.CancelNow(state.Source, nameof(ConnectionClosed)),
                (Connection: this, Source: source), preferLocal: false);
        }
        else
        {
            CancelNow(source, nameof(ConnectionClosedRequested));
        }
    }

    private void CancelNow(CancellationTokenSource source, string token)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed already: the connection is gone and nobody is listening.
        }
        catch (AggregateException ex)
        {
            // Code we did not write (a protocol, Kestrel, a user's callback) threw. Cancel ran every callback and
            // collected what they threw; on a thread-pool item an escaping exception would end the process.
            foreach (Exception callbackError in ex.InnerExceptions)
            {
                TransportConnectionLog.CallbackFailed(_logger, ConnectionId, token, callbackError);
            }
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
