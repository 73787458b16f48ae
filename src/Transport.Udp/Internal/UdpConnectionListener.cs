using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

/// <summary>
/// A bound UDP socket that presents each remote peer as a connection. The receiver reads datagrams; this listener
/// finds each one's session in the table (no allocation) and queues the datagram to it; a new peer becomes a new
/// connection for <see cref="AcceptAsync"/>, up to the session limit. After unbind, the socket stays open until the
/// last session has ended.
/// </summary>
internal sealed class UdpConnectionListener : IConnectionListener, IDatagramChannel
{
    private readonly Socket _socket;
    private readonly UdpTransportOptions _options;
    private readonly ILogger _logger;
    private readonly UdpEndpointMetrics _metrics;
    private readonly string _name;
    private readonly UdpSessionTable _sessions;
    private readonly Channel<UdpConnection> _accepted = Channel.CreateUnbounded<UdpConnection>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly UdpIdleSweep _idleSweep;
    private readonly UdpReceiver _receiver;
    private readonly TaskCompletionSource _closing = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _unbound;
    private int _closed;

    // The socket is bound already (UdpListenSocket.Bind, or inherited); the listener owns it from here.
    public UdpConnectionListener(Socket socket, UdpTransportOptions options, ILogger logger, UdpMetrics metrics)
    {
        _options = options;
        _logger = logger;
        _socket = socket;
        EndPoint = new UdpEndPoint(_socket.LocalEndPoint!);
        _name = EndPoint.ToString()!;
        _metrics = metrics.For(EndPoint);
        _sessions = new UdpSessionTable(options.MaxSessions, _metrics, logger, _name);
        _idleSweep = new UdpIdleSweep(_sessions, options.SessionIdleTimeout, logger, _name);
        _receiver = new UdpReceiver(_socket, options, _metrics, logger, _name, Dispatch, _closing.Task);

        // Runs until the socket closes (after unbind, with the last session); it contains its own faults.
        _ = _receiver.RunAsync();
    }

    public EndPoint EndPoint { get; }

    /// <summary>
    /// For tests: called before each receive with whether it is a batched one; a non-zero <c>errno</c> makes that receive
    /// fail as if the kernel had returned it.
    /// </summary>
    internal Func<bool, int>? ReceiveFault
    {
        get => _receiver.Fault;
        set => _receiver.Fault = value;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            while (await _accepted.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_accepted.Reader.TryRead(out UdpConnection? connection))
                {
                    return connection;
                }
            }
        }
        catch (ChannelClosedException)
        {
        }

        return null;
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        // New peers are refused from now on; sessions already open keep the socket until they end.
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _accepted.Writer.TryComplete();
            while (_accepted.Reader.TryRead(out UdpConnection? orphan))
            {
                orphan.Abort(new ConnectionAbortedException("The listener was unbound before the session was accepted."));
                await orphan.DisposeAsync().ConfigureAwait(false);
            }

            CloseIfIdle();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
    }

    ValueTask IDatagramChannel.SendAsync(UdpConnection connection, ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken)
    {
        if (_receiver.Sends is { } batch && batch.TryQueue(connection, datagram))
        {
            return ValueTask.CompletedTask;
        }

        ValueTask<int> sending = _socket.SendToAsync(datagram, SocketFlags.None, connection.Peer!, cancellationToken);
        if (sending.IsCompletedSuccessfully)
        {
            _ = sending.Result;
            return ValueTask.CompletedTask;
        }

        return new ValueTask(sending.AsTask());
    }

    void IDatagramChannel.OnDisposed(UdpConnection connection)
    {
        _sessions.Remove(connection);
        CloseIfIdle();
    }

    private void CloseIfIdle()
    {
        if (Volatile.Read(ref _unbound) != 0 && _sessions.IsEmpty && Interlocked.Exchange(ref _closed, 1) == 0)
        {
            _closing.TrySetResult();
            _idleSweep.Dispose();
            _socket.Dispose();
        }
    }

    /// <summary>Delivers a datagram to its peer's session, opening one for a new peer unless unbound or at the limit.</summary>
    private void Dispatch(SocketAddress address, ReadOnlySpan<byte> datagram)
    {
        if (!_sessions.TryGet(address, out UdpConnection? session))
        {
            session = TryOpenSession(address);
            if (session is null)
            {
                return;
            }
        }

        if (session.Deliver(datagram))
        {
            _metrics.Received.Add(1);
        }
        else
        {
            _metrics.Dropped.Add(1);
            UdpLog.QueueFull(_logger, _name, session.ConnectionId, session.RemoteEndPoint?.ToString());
        }
    }

    private UdpConnection? TryOpenSession(SocketAddress address)
    {
        if (Volatile.Read(ref _unbound) != 0)
        {
            _metrics.Refused.Add(1);
            return null;
        }

        if (!_sessions.HasRoom())
        {
            return null;
        }

        // The receive loop reuses its address: the session keeps a copy of its own.
        var peer = new SocketAddress(address.Family, address.Size);
        address.Buffer.CopyTo(peer.Buffer);
        EndPoint remote = ((IPEndPoint)_socket.LocalEndPoint!).Create(peer);
        var session = new UdpConnection(this, peer, EndPoint, new UdpEndPoint(remote), _options, _logger);

        // In the table before AcceptAsync can hand it out (and a protocol end it).
        _sessions.Add(session);
        _accepted.Writer.TryWrite(session);
        return session;
    }
}
