using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Transport.Sockets.Internal;

internal sealed class SocketConnectionListener : IConnectionListener
{
    private readonly EndPoint _requested;
    private readonly SocketTransportOptions _options;
    private readonly TransportListenOptions _limits;
    private readonly BlockMemoryPool _memoryPool;
    private readonly ILogger _logger;
    private Socket? _listenSocket;
    private string? _socketFile;
    private int _unbound;

    public SocketConnectionListener(EndPoint endpoint, SocketTransportOptions options, TransportListenOptions limits, BlockMemoryPool memoryPool, ILogger logger)
    {
        _requested = endpoint;
        _options = options;
        _limits = limits;
        _memoryPool = memoryPool;
        _logger = logger;
        EndPoint = endpoint;
    }

    public EndPoint EndPoint { get; private set; }

    public void Bind()
    {
        Socket socket;
        if (_requested is UnixDomainSocketEndPoint unix)
        {
            string path = unix.ToString();
            UnixSocketPath.Prepare(path, _logger);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _socketFile = path;
        }
        else
        {
            var ip = (IPEndPoint)_requested;
            socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (ip.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }
        }

        try
        {
            socket.Bind(_requested);
            socket.Listen(_options.Backlog);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            _socketFile = null;
            throw new AddressInUseException($"{TransportUrl.Format(_requested)} is already in use by another process.", ex);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            _socketFile = null;
            throw new IOException($"Cannot listen on {TransportUrl.Format(_requested)}: {ex.Message}", ex);
        }

        _listenSocket = socket;
        EndPoint = socket.LocalEndPoint ?? _requested;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        Socket? listenSocket = _listenSocket;
        if (listenSocket is null)
        {
            return null;
        }

        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await listenSocket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted || Volatile.Read(ref _unbound) != 0)
            {
                return null;
            }
            catch (SocketException ex) when (SocketErrors.IsConnectionReset(ex.SocketErrorCode))
            {
                SocketsLog.AcceptReset(_logger, TransportUrl.Format(EndPoint));
                continue;
            }

            if (_options.NoDelay && accepted.AddressFamily != AddressFamily.Unix)
            {
                accepted.NoDelay = true;
            }

            var connection = new SocketConnection(accepted, _options, _limits, _memoryPool, _logger);
            connection.Start();
            return connection;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            _listenSocket?.Dispose();
            RemoveSocketFile();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();

    private void RemoveSocketFile()
    {
        string? path = _socketFile;
        if (path is null || UnixSocketPath.IsSocket(path) != true)
        {
            return;
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            SocketsLog.SocketFileRemoveFailed(_logger, path, ex);
        }
    }
}
