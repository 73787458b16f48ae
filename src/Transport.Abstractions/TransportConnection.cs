using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Transport;

/// <summary>
/// Base class for a transport's connections: the <see cref="ConnectionContext"/> a protocol sees, with the
/// standard features (id, items, transport pipe, end points, lifetime and close notification) already in
/// <see cref="Features"/>. A transport derives from it and implements <c>Abort(ConnectionAbortedException)</c>
/// and <c>DisposeAsync</c>.
/// </summary>
public abstract class TransportConnection : ConnectionContext,
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature,
    IConnectionLifetimeNotificationFeature
{
    private static long s_lastId = DateTime.UtcNow.Ticks;

    // Created on first use: a connection that nobody asks for features or tokens (most short-lived ones)
    // allocates none of these.
    private FeatureCollection? _features;
    private CancellationTokenSource? _closeRequested;
    private CancellationTokenSource? _closed;
    private IDictionary<object, object?>? _items;
    private string? _connectionId;
    private int _closeRequestedFlag;
    private int _closedFlag;

    /// <inheritdoc />
    public override string ConnectionId
    {
        get => _connectionId ??= Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        set => _connectionId = value;
    }

    /// <inheritdoc />
    public override IFeatureCollection Features
    {
        get
        {
            if (_features is null)
            {
                var features = new FeatureCollection(6);
                features.Set<IConnectionIdFeature>(this);
                features.Set<IConnectionTransportFeature>(this);
                features.Set<IConnectionItemsFeature>(this);
                features.Set<IConnectionLifetimeFeature>(this);
                features.Set<IConnectionEndPointFeature>(this);
                features.Set<IConnectionLifetimeNotificationFeature>(this);
                Interlocked.CompareExchange(ref _features, features, null);
            }

            return _features;
        }
    }

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
        get => LazyToken(ref _closed, ref _closedFlag, cancelOnThreadPool: true);
        set => throw new NotSupportedException("The transport owns ConnectionClosed.");
    }

    /// <inheritdoc />
    public CancellationToken ConnectionClosedRequested
    {
        get => LazyToken(ref _closeRequested, ref _closeRequestedFlag, cancelOnThreadPool: false);
        set => throw new NotSupportedException("The transport owns ConnectionClosedRequested.");
    }

    /// <summary>
    /// Asks the protocol to finish its work and close (e.g. when the host is stopping). The connection is
    /// not closed by this call; a protocol that does not observe <see cref="ConnectionClosedRequested"/>
    /// carries on until the host's shutdown deadline aborts it.
    /// </summary>
    public void RequestClose() => Signal(ref _closeRequested, ref _closeRequestedFlag, cancelOnThreadPool: false);

    /// <summary>
    /// Signals <c>ConnectionClosed</c> once, when the peer's side of the connection has
    /// ended. Callbacks registered on the token run on the thread pool, never on the caller's stack.
    /// </summary>
    protected void OnConnectionClosed() => Signal(ref _closed, ref _closedFlag, cancelOnThreadPool: true);

    /// <summary>Releases the connection's token sources; call from <c>DisposeAsync</c> once the I/O has ended.</summary>
    protected void DisposeTokens()
    {
        Volatile.Read(ref _closed)?.Dispose();
        Volatile.Read(ref _closeRequested)?.Dispose();
    }


    /// <summary>Pairs the protocol's ends of the input and output pipes into <see cref="Transport"/>'s type.</summary>
    /// <param name="input">What the protocol reads.</param>
    /// <param name="output">What the protocol writes.</param>
    /// <returns>The duplex pipe.</returns>
    protected static IDuplexPipe CreateDuplexPipe(PipeReader input, PipeWriter output) => new DuplexPipe(input, output);

    /// <summary>
    /// The token of a signal that may fire before anyone asks for it: the source is created on first request,
    /// and created cancelled if the signal already fired.
    /// </summary>
    private static CancellationToken LazyToken(ref CancellationTokenSource? source, ref int flag, bool cancelOnThreadPool)
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
                Cancel(existing, cancelOnThreadPool);
            }
        }

        return existing.Token;
    }

    private static void Signal(ref CancellationTokenSource? source, ref int flag, bool cancelOnThreadPool)
    {
        if (Interlocked.Exchange(ref flag, 1) != 0)
        {
            return;
        }

        if (Volatile.Read(ref source) is { } existing)
        {
            Cancel(existing, cancelOnThreadPool);
        }
    }

    private static void Cancel(CancellationTokenSource source, bool onThreadPool)
    {
        if (onThreadPool)
        {
            // Callbacks registered by protocols must not run on the transport's I/O stack.
            ThreadPool.UnsafeQueueUserWorkItem(static s => CancelNow(s), source, preferLocal: false);
        }
        else
        {
            CancelNow(source);
        }
    }

    private static void CancelNow(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed already: the connection is gone and nobody is listening.
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
