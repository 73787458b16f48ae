using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>
/// A bound UDP socket that presents each remote peer as a connection. The receiver reads datagrams; this listener
/// finds each one's session in the table (no allocation) and queues the datagram to it; a new peer becomes a new
/// connection for <see cref="AcceptAsync"/>, up to the session limit. After unbind, the socket stays open until the
/// last session has ended.
/// </summary>
internal sealed class UdpConnectionListener : IConnectionListener, IDatagramChannel, IListenerHealth
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

    // This period's traffic, for the idle memory collector: datagrams (counted by the one receive loop) and ended sessions.
    private int _periodDatagrams;
    private int _periodEnded;

    /// <summary>Fewer datagrams than this in a sweep period is a trickle (health checks), not traffic.</summary>
    internal const int QuietDatagrams = 1024;

    /// <summary>Fewer ended sessions than this in a sweep period is a trickle too.</summary>
    internal const int QuietEndedSessions = 64;

    // PROXY protocol: the options the endpoint was bound with carry the policy (null without; a configuration reload
    // may replace it, so it is read per datagram); the scratch keys a header's source is written into, the senders
    // already judged under the current policy and the outcomes counted are made when a policy is first seen. Only the
    // receive loop touches these.
    private readonly TransportListenOptions? _listenOptions;
    private DatagramProxyProtocol? _proxy;
    private SocketAddress? _proxySourceV4;
    private SocketAddress? _proxySourceV6;
    private readonly SocketAddress?[] _trustedSenders = new SocketAddress?[8];
    private SocketAddress? _untrustedSender;
    private int _nextTrustedSlot;
    private TaggedCounter? _proxyUntrusted;
    private TaggedCounter? _proxyMissing;
    private TaggedCounter? _proxyMalformed;
    private TaggedCounter? _proxyChecksum;

    // The socket is bound already (UdpListenSocket.Bind, or inherited); the listener owns it from here.
    public UdpConnectionListener(Socket socket, UdpTransportOptions options, ILogger logger, UdpMetrics metrics,
        TransportListenOptions? listenOptions = null)
    {
        _options = options;
        _logger = logger;
        _socket = socket;
        EndPoint = new UdpEndPoint(_socket.LocalEndPoint!);
        _name = EndPoint.ToString()!;
        _metrics = metrics.For(EndPoint);
        _listenOptions = listenOptions;
        _sessions = new UdpSessionTable(options.MaxSessions, _metrics, logger, _name);
        _idleSweep = new UdpIdleSweep(_sessions, options.SessionIdleTimeout, logger, _name,
            options.ReturnMemoryWhenIdle ? IdleMemoryCollector.Shared.AddSource(logger) : null, TakeQuiet);
        _receiver = new UdpReceiver(_socket, options, _metrics, logger, _name, Dispatch, _closing.Task);

        // Runs until the socket closes (after unbind, with the last session); it contains its own faults.
        _ = _receiver.RunAsync();
    }

    public EndPoint EndPoint { get; }

    /// <inheritdoc />
    public bool AcceptFailing => _receiver.Failing;

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
        Interlocked.Increment(ref _periodEnded);
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
        SocketAddress key = address;
        int headerLength = 0;
        ReadOnlySpan<byte> received = datagram;
        if (_listenOptions?.DatagramProxyProtocol is { } policy && !TryStripProxyHeader(policy, address, ref datagram, out key, out headerLength))
        {
            _periodDatagrams++;
            return;
        }

        if (!_sessions.TryGet(key, out UdpConnection? session))
        {
            session = TryOpenSession(address, key, headerLength == 0 ? default : received[..headerLength]);
            if (session is null)
            {
                return;
            }
        }

        _periodDatagrams++;
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

    /// <summary>The datagrams received in this sweep period so far (for tests).</summary>
    internal int PeriodDatagrams => Volatile.Read(ref _periodDatagrams);

    /// <summary>Whether this sweep period saw only a trickle of traffic; starts the next period.</summary>
    internal bool TakeQuiet() =>
        Interlocked.Exchange(ref _periodDatagrams, 0) < QuietDatagrams & Interlocked.Exchange(ref _periodEnded, 0) < QuietEndedSessions;

    private UdpConnection? TryOpenSession(SocketAddress address, SocketAddress key, ReadOnlySpan<byte> proxyHeader)
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

        // The receive loop reuses its address (and the scratch key): the session keeps copies of its own.
        SocketAddress peer = Copy(address);
        EndPoint remote = ((IPEndPoint)_socket.LocalEndPoint!).Create(peer);
        UdpConnection session;
        if (proxyHeader.IsEmpty)
        {
            session = new UdpConnection(this, peer, EndPoint, new UdpEndPoint(remote), _options, _logger);
        }
        else
        {
            // Once per session, the header in full (already checked per datagram): the feature, and the client's addresses.
            ProxyProtocolHeader header = ProxyProtocolHeader.TryRead(new System.Buffers.ReadOnlySequence<byte>(proxyHeader.ToArray())).Header!;
            EndPoint? client = header.SourceEndPoint is IPEndPoint source ? new UdpEndPoint(source) : null;
            EndPoint? local = header.DestinationEndPoint is IPEndPoint destination ? new UdpEndPoint(destination) : null;
            session = new UdpConnection(this, peer, local ?? EndPoint, client ?? new UdpEndPoint(remote), _options, _logger,
                ReferenceEquals(key, address) ? null : Copy(key));
            session.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(header, new UdpEndPoint(remote), EndPoint));
        }

        // In the table before AcceptAsync can hand it out (and a protocol end it).
        _sessions.Add(session);
        _accepted.Writer.TryWrite(session);
        return session;
    }

    private static SocketAddress Copy(SocketAddress address)
    {
        var copy = new SocketAddress(address.Family, address.Size);
        address.Buffer.CopyTo(copy.Buffer);
        return copy;
    }

    /// <summary>
    /// Applies the endpoint's PROXY protocol policy to one datagram: strips a trusted header and keys the session on the
    /// client's address in it; false (counted, and logged at Debug) when the datagram is dropped.
    /// </summary>
    private bool TryStripProxyHeader(DatagramProxyProtocol policy, SocketAddress sender, ref ReadOnlySpan<byte> datagram, out SocketAddress key, out int headerLength)
    {
        key = sender;
        headerLength = 0;
        if (!ReferenceEquals(policy, _proxy))
        {
            UsePolicy(policy);
        }

        bool trusted = IsTrustedSender(sender);
        ProxyProtocolStatus status = ProxyProtocolParser.ReadDatagram(datagram, _proxySourceV4!, _proxySourceV6!, out int length, out SocketAddress? source, out string? error);
        switch (status)
        {
            case ProxyProtocolStatus.NotProxyProtocol when !_proxy!.Required:
                return true;
            case ProxyProtocolStatus.NotProxyProtocol:
                return Drop(sender, trusted ? _proxyMissing! : _proxyUntrusted!, trusted ? "no header, and Mode is Required" : "not from a trusted proxy, and Mode is Required");
            case ProxyProtocolStatus.Complete when !trusted:
                return Drop(sender, _proxyUntrusted!, "a header from an address that is not in TrustedProxies");
            case ProxyProtocolStatus.Complete:
                key = source ?? sender;
                headerLength = length;
                datagram = datagram[length..];
                return true;
            case ProxyProtocolStatus.ChecksumMismatch:
                return Drop(sender, _proxyChecksum!, error!);
            default:
                return Drop(sender, _proxyMalformed!, error ?? "a malformed header");
        }
    }

    /// <summary>A policy seen for the first time (at the first datagram, or after a reload): what was judged under another is forgotten.</summary>
    private void UsePolicy(DatagramProxyProtocol policy)
    {
        _proxy = policy;
        _proxySourceV4 ??= new IPEndPoint(IPAddress.Any, 0).Serialize();
        _proxySourceV6 ??= new IPEndPoint(IPAddress.IPv6Any, 0).Serialize();
        _proxyUntrusted ??= _metrics.ForOutcome("proxy_protocol_untrusted");
        _proxyMissing ??= _metrics.ForOutcome("proxy_protocol_missing");
        _proxyMalformed ??= _metrics.ForOutcome("proxy_protocol_malformed");
        _proxyChecksum ??= _metrics.ForOutcome("proxy_protocol_checksum_mismatch");
        Array.Clear(_trustedSenders);
        _untrustedSender = null;
        _nextTrustedSlot = 0;
    }

    private bool Drop(SocketAddress sender, TaggedCounter outcome, string reason)
    {
        outcome.Add(1);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            UdpLog.ProxyHeaderRejected(_logger, _name, ((IPEndPoint)_socket.LocalEndPoint!).Create(sender).ToString(), reason);
        }

        return false;
    }

    /// <summary>Whether the sender is a trusted proxy: the last few trusted senders are remembered, so a proxy's datagrams allocate nothing.</summary>
    private bool IsTrustedSender(SocketAddress sender)
    {
        foreach (SocketAddress? known in _trustedSenders)
        {
            if (known is not null && known.Equals(sender))
            {
                return true;
            }
        }

        if (_untrustedSender is not null && _untrustedSender.Equals(sender))
        {
            return false;
        }

        bool trusted = _proxy!.IsTrusted(((IPEndPoint)_socket.LocalEndPoint!).Create(sender));
        if (trusted)
        {
            _trustedSenders[_nextTrustedSlot] = Copy(sender);
            _nextTrustedSlot = (_nextTrustedSlot + 1) % _trustedSenders.Length;
        }
        else
        {
            _untrustedSender = Copy(sender);
        }

        return trusted;
    }
}
