using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Transport.Memory.Internal;

internal sealed class MemoryConnectionListener : IConnectionListener
{
    private readonly Channel<MemoryConnection> _pending = Channel.CreateUnbounded<MemoryConnection>(
        new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    private readonly TransportListenOptions _limits;
    private readonly MemoryTransportFactory _owner;

    public MemoryConnectionListener(MemoryEndPoint endpoint, TransportListenOptions limits, MemoryTransportFactory owner)
    {
        EndPoint = endpoint;
        _limits = limits;
        _owner = owner;
    }

    public EndPoint EndPoint { get; }

    public bool TryConnect([NotNullWhen(true)] out MemoryConnection? client)
    {
        var pair = new MemoryConnectionPair(_limits, (MemoryEndPoint)EndPoint, _owner.Logger);
        if (_pending.Writer.TryWrite(pair.Server))
        {
            client = pair.Client;
            return true;
        }

        client = null;
        return false;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (await _pending.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_pending.Reader.TryRead(out MemoryConnection? connection))
            {
                return connection;
            }
        }

        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (_pending.Writer.TryComplete())
        {
            _owner.Remove(this);
            while (_pending.Reader.TryRead(out MemoryConnection? orphan))
            {
                orphan.Abort(new ConnectionAbortedException("The listener was unbound before the connection was accepted."));
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();
}
