using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Udp.Internal;

/// <summary>Hands one received datagram, from the peer at <paramref name="address"/>, to its session.</summary>
internal delegate void DatagramHandler(SocketAddress address, ReadOnlySpan<byte> datagram);

/// <summary>
/// Reads the listener's socket until it closes: in batches where the OS offers them (<see cref="UdpBatchReceiveLoop"/>),
/// otherwise one datagram at a time (<see cref="UdpPortableReceiveLoop"/>). No receive error ends it: it backs off and
/// reads again; an exception from delivering a datagram is a fault in our code, logged the same way, and the loop
/// starts over.
/// </summary>
internal sealed class UdpReceiver
{
    private readonly UdpEndpointMetrics _metrics;
    private readonly ILogger _logger;
    private readonly IPEndPoint _localEndPoint;
    private readonly Task _closing;
    private readonly HashSet<SocketAddress> _oversizeLogged = [];
    private UdpSendBatch? _sends;

    public UdpReceiver(Socket socket, UdpTransportOptions options, UdpEndpointMetrics metrics, ILogger logger, string name, DatagramHandler dispatch, Task closing)
    {
        Socket = socket;
        MaxDatagramSize = options.MaxDatagramSize;
        _metrics = metrics;
        _logger = logger;
        Name = name;
        Dispatch = dispatch;
        _closing = closing;
        _localEndPoint = (IPEndPoint)socket.LocalEndPoint!;
    }

    public Socket Socket { get; }

    public int MaxDatagramSize { get; }

    public string Name { get; }

    public ILogger Logger => _logger;

    public DatagramHandler Dispatch { get; }

    /// <summary>Whether the listener has closed the socket (unbound, and its last session ended).</summary>
    public bool IsClosed => _closing.IsCompleted;

    /// <summary>The send batch of the batch receive loop while it runs.</summary>
    public UdpSendBatch? Sends
    {
        get => Volatile.Read(ref _sends);
        set => Volatile.Write(ref _sends, value);
    }

    /// <summary>
    /// For tests: called before each receive with whether it is a batched one; a non-zero <c>errno</c> makes that receive
    /// fail as if the kernel had returned it.
    /// </summary>
    public Func<bool, int>? Fault { get; set; }

    private RetryBackoff? _backoff;

    /// <summary>Whether the last receive failed and none has succeeded since.</summary>
    public bool Failing => _backoff?.Failing ?? false;

    public async Task RunAsync()
    {
        await Task.Yield();
        using var backoff = new RetryBackoff(TimeProvider.System, OnRecovered);
        _backoff = backoff;
        bool batching = LinuxDatagramBatch.IsSupported;
        while (!IsClosed)
        {
            try
            {
                if (batching)
                {
                    if (!await UdpBatchReceiveLoop.RunAsync(this, backoff).ConfigureAwait(false))
                    {
                        return;
                    }

                    batching = false;
                }

                await UdpPortableReceiveLoop.RunAsync(this, backoff).ConfigureAwait(false);
                return;
            }
            catch (Exception ex)
            {
                if (!await BackOffAsync(backoff, RetryBackoff.ErrorType(ex), ex.Message, ex).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    /// <summary>Counts and logs a failed receive, then waits before the next; false when the socket closed meanwhile.</summary>
    public async Task<bool> BackOffAsync(RetryBackoff backoff, string errorType, string reason, Exception? exception)
    {
        TimeSpan delay = backoff.Fail(out bool episodeStarted);
        _metrics.ReceiveError(errorType);
        if (episodeStarted)
        {
            UdpLog.ReceiveFailing(_logger, Name, errorType, reason, RetryBackoff.MaxDelay.TotalSeconds, exception);
        }
        else
        {
            UdpLog.ReceiveFailingAgain(_logger, Name, errorType, backoff.Failures, delay.TotalMilliseconds);
        }

        return await backoff.WaitAsync(delay, _closing, CancellationToken.None).ConfigureAwait(false) && !IsClosed;
    }

    /// <summary>
    /// What a receive loop does with an exception from waiting for or reading a datagram: true to read again (an
    /// unreachable peer, or a fault it has waited out), false to stop (the socket closed).
    /// </summary>
    public async Task<bool> OnReceiveExceptionAsync(Exception exception, RetryBackoff backoff)
    {
        switch (exception)
        {
            case SocketException ex when ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted && IsClosed:
            case ObjectDisposedException:
                return false;
            case SocketException ex when UdpErrors.IsIgnoredOnReceive(ex.SocketErrorCode):
                // An ICMP error from some peer: the next receive goes on with the queued datagrams.
                IgnoreError(ex.SocketErrorCode);
                return true;
            default:
                // ENOBUFS or ENOMEM, or anything unexpected: wait, then read again.
                return await BackOffAsync(backoff, RetryBackoff.ErrorType(exception), exception.Message, exception is SocketException ? null : exception).ConfigureAwait(false);
        }
    }

    public void IgnoreError(SocketError error) => UdpLog.ReceiveErrorIgnored(_logger, Name, error.ToString());

    /// <summary>Counts a datagram over <see cref="MaxDatagramSize"/> and logs it once per peer (for the first 1024 peers).</summary>
    public void OnOversize(SocketAddress address)
    {
        _metrics.Oversize.Add(1);
        lock (_oversizeLogged)
        {
            if (_oversizeLogged.Count >= 1024 || _oversizeLogged.Contains(address))
            {
                return;
            }

            var copy = new SocketAddress(address.Family, address.Size);
            address.Buffer.CopyTo(copy.Buffer);
            _oversizeLogged.Add(copy);
        }

        EndPoint peer = _localEndPoint.Create(address);
        UdpLog.OversizeDatagram(_logger, Name, MaxDatagramSize, peer.ToString()!);
    }

    private void OnRecovered(long failures, TimeSpan duration) => UdpLog.ReceiveRecovered(_logger, Name, failures, duration.TotalSeconds);
}
