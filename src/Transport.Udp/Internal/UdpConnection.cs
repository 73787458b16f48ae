using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

/// <summary>
/// A UDP peer as a connection: reads are whole datagrams from that peer, each flush is one datagram to it.
/// </summary>
internal sealed class UdpConnection : TransportConnection
{
    private readonly IDatagramChannel _channel;
    private readonly DatagramPipeReader _input;
    private readonly DatagramPipeWriter _output;
    private readonly CancellationTokenRegistration _closeRequest;
    private long _lastActivity;
    private int _outputClosed;

    /// <param name="channel">Sends the session's datagrams.</param>
    /// <param name="peer">Where its datagrams go (the sender's address); null for a client connection.</param>
    /// <param name="local">The connection's local endpoint.</param>
    /// <param name="remote">The connection's remote endpoint (the client's behind a proxy).</param>
    /// <param name="options">The transport's options.</param>
    /// <param name="logger">The transport's logger.</param>
    /// <param name="key">The session's key in the listener's table when it is not <paramref name="peer"/>: the client's address from a PROXY header.</param>
    public UdpConnection(IDatagramChannel channel, SocketAddress? peer, EndPoint? local, EndPoint? remote, UdpTransportOptions options, ILogger logger,
        SocketAddress? key = null)
        : base(logger)
    {
        _channel = channel;
        Peer = peer;
        Key = key ?? peer;
        LocalEndPoint = local;
        RemoteEndPoint = remote;
        _input = new DatagramPipeReader(options.MaxQueuedDatagrams, options.InlineScheduling);
        _output = new DatagramPipeWriter(this, options.MaxDatagramSize);
        Transport = CreateDuplexPipe(_input, _output);
        Touch();

        // At shutdown there is no FIN to wait for: a close request ends the session's input, so the protocol
        // finishes what is queued and returns.
        _closeRequest = ConnectionClosedRequested.UnsafeRegister(static s => ((UdpConnection)s!).EndInput(null), this);
    }

    /// <summary>The peer's address on the listener's socket; null for a client connection.</summary>
    public SocketAddress? Peer { get; }

    /// <summary>The session's key in the listener's table: <see cref="Peer"/>, or the client's address behind a proxy.</summary>
    public SocketAddress? Key { get; }

    public long LastActivity => Volatile.Read(ref _lastActivity);

    public long DroppedDatagrams => _input.Dropped;

    public bool IsOutputClosed => Volatile.Read(ref _outputClosed) != 0;

    public void Touch() => Volatile.Write(ref _lastActivity, Environment.TickCount64);

    /// <summary>Hands a received datagram to the protocol; false when the session's queue is full.</summary>
    public bool Deliver(ReadOnlySpan<byte> datagram)
    {
        Touch();
        if (!_input.TryEnqueue(datagram))
        {
            return false;
        }

        CountReceived(datagram.Length);
        return true;
    }

    /// <summary>Ends the protocol's input (idle timeout, shutdown, or an error such as an ICMP unreachable).</summary>
    public void EndInput(Exception? error)
    {
        _input.CompleteWriter(error);
        OnConnectionClosed();
    }

    public async ValueTask SendDatagramAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken)
    {
        if (IsOutputClosed)
        {
            return;
        }

        Touch();
        try
        {
            await _channel.SendAsync(this, datagram, cancellationToken).ConfigureAwait(false);
            CountSent(datagram.Length);
        }
        catch (SocketException ex) when (UdpErrors.IsPeerUnreachable(ex.SocketErrorCode))
        {
            Volatile.Write(ref _outputClosed, 1);
            MarkReset();
            EndInput(UdpErrors.PeerUnreachable(RemoteEndPoint, ex));
            throw UdpErrors.PeerUnreachable(RemoteEndPoint, ex);
        }
        catch (ObjectDisposedException ex)
        {
            Volatile.Write(ref _outputClosed, 1);
            throw new ConnectionAbortedException("The UDP endpoint was closed.", ex);
        }
    }

    /// <summary>
    /// A datagram this session flushed into the listener's send batch could not be sent. Its flush has already
    /// returned, so the error surfaces the way an unreachable peer does: the output closes (the next flush reports
    /// completed) and the input ends with the error.
    /// </summary>
    public void OnBatchedSendFailed(SocketException ex)
    {
        Volatile.Write(ref _outputClosed, 1);
        if (UdpErrors.IsPeerUnreachable(ex.SocketErrorCode))
        {
            MarkReset();
        }

        EndInput(UdpErrors.IsPeerUnreachable(ex.SocketErrorCode)
            ? UdpErrors.PeerUnreachable(RemoteEndPoint, ex)
            : new ConnectionAbortedException($"Sending to {RemoteEndPoint} failed: {ex.Message}", ex));
    }

    public override void Abort(ConnectionAbortedException? abortReason)
    {
        MarkAborted();
        Volatile.Write(ref _outputClosed, 1);
        EndInput(AbortReasonOrDefault(abortReason));
    }

    protected override async ValueTask CloseTransportAsync()
    {
        Volatile.Write(ref _outputClosed, 1);
        await _closeRequest.DisposeAsync().ConfigureAwait(false);
        _input.Complete();
        _output.Complete();
        OnConnectionClosed();
        _channel.OnDisposed(this);
    }
}

/// <summary>What a UDP connection sends through: the listener's shared socket, or a client's connected socket.</summary>
internal interface IDatagramChannel
{
    ValueTask SendAsync(UdpConnection connection, ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken);

    void OnDisposed(UdpConnection connection);
}
