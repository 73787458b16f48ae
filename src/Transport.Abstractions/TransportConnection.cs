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

    private FeatureCollection? _features;
    private readonly CancellationTokenSource _closeRequested = new();
    private readonly CancellationTokenSource _closed = new();
    private int _closedFired;
    private IDictionary<object, object?>? _items;
    private string? _connectionId;

    /// <summary>Creates the connection and registers its standard features.</summary>
    protected TransportConnection()
    {
        ConnectionClosedRequested = _closeRequested.Token;
        ConnectionClosed = _closed.Token;
    }

    /// <inheritdoc />
    public override string ConnectionId
    {
        get => _connectionId ??= Interlocked.Increment(ref s_lastId).ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        set => _connectionId = value;
    }

    /// <inheritdoc />
    /// <remarks>Created on first use: most connections never ask (about 400 bytes each).</remarks>
    public override IFeatureCollection Features => Volatile.Read(ref _features) ?? CreateFeatures();

    /// <inheritdoc />
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    /// <inheritdoc />
    public override IDuplexPipe Transport { get; set; } = null!;

    /// <inheritdoc />
    public CancellationToken ConnectionClosedRequested { get; set; }

    /// <summary>
    /// Asks the protocol to finish its work and close (e.g. when the host is stopping). The connection is
    /// not closed by this call; a protocol that does not observe <see cref="ConnectionClosedRequested"/>
    /// carries on until the host's shutdown deadline aborts it.
    /// </summary>
    public void RequestClose()
    {
        try
        {
            _closeRequested.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already disposed: the connection is gone, there is nothing to ask.
        }
    }

    /// <summary>
    /// Signals <c>ConnectionClosed</c> once, when the peer's side of the connection has
    /// ended. Callbacks registered on the token run on the thread pool, never on the caller's stack.
    /// </summary>
    protected void OnConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) != 0)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static state =>
        {
            try
            {
                state.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Disposed already: nobody is listening.
            }
        }, _closed, preferLocal: false);
    }

    /// <summary>Releases the connection's token sources; call from <c>DisposeAsync</c> once the I/O has ended.</summary>
    protected void DisposeTokens()
    {
        _closed.Dispose();
        _closeRequested.Dispose();
    }

    private FeatureCollection CreateFeatures()
    {
        var features = new FeatureCollection(6);
        features.Set<IConnectionIdFeature>(this);
        features.Set<IConnectionTransportFeature>(this);
        features.Set<IConnectionItemsFeature>(this);
        features.Set<IConnectionLifetimeFeature>(this);
        features.Set<IConnectionEndPointFeature>(this);
        features.Set<IConnectionLifetimeNotificationFeature>(this);

        // Two threads may race here (the protocol and the host's shutdown); both must see the same collection.
        return Interlocked.CompareExchange(ref _features, features, null) ?? features;
    }

    /// <summary>Pairs the protocol's ends of the input and output pipes into <see cref="Transport"/>'s type.</summary>
    /// <param name="input">What the protocol reads.</param>
    /// <param name="output">What the protocol writes.</param>
    /// <returns>The duplex pipe.</returns>
    protected static IDuplexPipe CreateDuplexPipe(PipeReader input, PipeWriter output) => new DuplexPipe(input, output);

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
