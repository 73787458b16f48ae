using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.Memory.Internal;

namespace Transport.Memory;

/// <summary>
/// The in-memory transport: listeners named <c>memory://name</c> inside this factory instance, and clients
/// that connect to them. Connections behave like sockets: end of stream when the peer completes its output,
/// backpressure at the buffer limits, a reset seen by the peer when one side aborts.
/// </summary>
public sealed class MemoryTransportFactory : ITransportFactory, Transport.Internal.IBuiltInTransport
{
    private readonly ConcurrentDictionary<MemoryEndPoint, MemoryConnectionListener> _listeners = new();

    /// <summary>Creates the transport.</summary>
    /// <param name="loggerFactory">Creates the transport's logger (category <c>Transport.Memory</c>).</param>
    public MemoryTransportFactory(ILoggerFactory? loggerFactory = null)
    {
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Transport.Memory");
    }

    internal ILogger Logger { get; }

    /// <inheritdoc />
    public string Name => "memory";

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => endpoint is MemoryEndPoint;

    /// <inheritdoc />
    public bool CanConnect(EndPoint endpoint) => endpoint is MemoryEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        BindAsync(endpoint, new TransportListenOptions(), cancellationToken);

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, TransportListenOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        MemoryEndPoint name = endpoint as MemoryEndPoint
            ?? throw new NotSupportedException($"The memory transport cannot bind {endpoint?.GetType().Name} '{endpoint}'.");
        var listener = new MemoryConnectionListener(name, options, this);
        if (!_listeners.TryAdd(name, listener))
        {
            throw new AddressInUseException($"{name} is already in use by another listener.");
        }

        return new ValueTask<IConnectionListener>(listener);
    }

    /// <inheritdoc />
    public ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        MemoryEndPoint name = endpoint as MemoryEndPoint
            ?? throw new NotSupportedException($"The memory transport cannot connect to {endpoint?.GetType().Name} '{endpoint}'.");
        cancellationToken.ThrowIfCancellationRequested();
        if (!_listeners.TryGetValue(name, out MemoryConnectionListener? listener) || !listener.TryConnect(out MemoryConnection? client))
        {
            throw new ConnectionRefusedException($"Connection to {name} was refused: nothing listens there.");
        }

        return new ValueTask<ConnectionContext>(client);
    }

    internal void Remove(MemoryConnectionListener listener) => _listeners.TryRemove(new KeyValuePair<MemoryEndPoint, MemoryConnectionListener>((MemoryEndPoint)listener.EndPoint, listener));
}
