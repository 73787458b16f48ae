using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

/// <summary>
/// A listener for one connection accepted by someone else (systemd's <c>Accept=yes</c> hands the service a connected
/// socket): the first accept returns it, the next waits until it has ended, or the listener is unbound, and returns null.
/// </summary>
internal sealed class AcceptedSocketListener : IConnectionListener
{
    private readonly SocketConnection _connection;
    private readonly TaskCompletionSource _unbound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _handedOut;

    public AcceptedSocketListener(InheritedSocketEndPoint inherited, SocketTransportOptions options, TransportListenOptions limits,
        BlockMemoryPool memoryPool, ILogger logger, DrainDeadlines drainDeadlines)
    {
        Socket socket = inherited.Socket;
        if (options.NoDelay && socket.AddressFamily != AddressFamily.Unix)
        {
            socket.NoDelay = true;
        }

        EndPoint = socket.LocalEndPoint ?? inherited;
        _connection = new SocketConnection(socket, new SocketConnectionSettings(options, limits, memoryPool, logger, drainDeadlines));
    }

    public EndPoint EndPoint { get; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _handedOut, 1) == 0 && !_unbound.Task.IsCompleted)
        {
            _connection.Start();
            return _connection;
        }

        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            using CancellationTokenRegistration registration = _connection.ConnectionClosed.UnsafeRegister(
                static state => ((TaskCompletionSource)state!).TrySetResult(), closed);
            await Task.WhenAny(closed.Task, _unbound.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // The connection is gone already.
        }

        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _unbound.TrySetResult();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _handedOut, 1) == 0)
        {
            // Never accepted (the host failed to start): the socket is still ours to close.
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
