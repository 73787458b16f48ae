using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Udp.Internal;

/// <summary>The client side: one connected UDP socket and its receive loop.</summary>
internal sealed class UdpClientChannel : IDatagramChannel
{
    private readonly Socket _socket;
    private readonly int _maxDatagramSize;
    private readonly ILogger _logger;

    public UdpClientChannel(Socket socket, UdpTransportOptions options, ILogger logger)
    {
        _socket = socket;
        _maxDatagramSize = options.MaxDatagramSize;
        _logger = logger;
        Connection = new UdpConnection(this, null, new UdpEndPoint(socket.LocalEndPoint!), new UdpEndPoint(socket.RemoteEndPoint!), options, logger);
    }

    public UdpConnection Connection { get; }

    public void Start() => _ = ReceiveLoopAsync();

    public async ValueTask SendAsync(UdpConnection connection, ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken) =>
        await _socket.SendAsync(datagram, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    public void OnDisposed(UdpConnection connection) => _socket.Dispose();

    private async Task ReceiveLoopAsync()
    {
        byte[] buffer = GC.AllocateUninitializedArray<byte>(_maxDatagramSize + 1, pinned: true);
        while (true)
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
            }
            catch (SocketException ex) when (UdpErrors.IsPeerUnreachable(ex.SocketErrorCode))
            {
                Connection.EndInput(UdpErrors.PeerUnreachable(Connection.RemoteEndPoint, ex));
                return;
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                Connection.EndInput(null);
                return;
            }

            if (received <= _maxDatagramSize)
            {
                try
                {
                    Connection.Deliver(buffer.AsSpan(0, received));
                }
                catch (Exception ex)
                {
                    // Never awaited: a fault here must end this connection visibly, not the loop silently.
                    UdpLog.ClientDeliverFailed(_logger, Connection.ConnectionId, ex);
                    Connection.EndInput(ex);
                    return;
                }
            }
        }
    }
}
