using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Transport.Internal;
using Transport.Sockets.Internal;
using Transport.Sockets.Internal.Epoll;

namespace Transport.Sockets;

/// <summary>
/// The TCP and Unix domain socket transport: binds listeners on <see cref="IPEndPoint"/> and
/// <see cref="UnixDomainSocketEndPoint"/>, and connects to those and to <see cref="DnsEndPoint"/>.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification =
    "The memory pool's trim timer stops by itself once the pool is unreferenced; the drain sweep's timer runs only while a closing socket waits.")]
public sealed class SocketTransportFactory : ITransportFactory, Transport.Internal.IBuiltInTransport
{
    private const string IoThreadCountVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";
    private readonly SocketTransportOptions _options;
    private readonly ILogger _logger;
    private readonly SocketMetrics _metrics;
    private readonly BlockMemoryPool _memoryPool;
    private readonly DrainDeadlines _drainDeadlines;
    private readonly SocketConnectionSettings _clientSettings;

    /// <summary>Creates the transport.</summary>
    /// <param name="options">The transport's options.</param>
    /// <param name="loggerFactory">Creates the transport's logger.</param>
    /// <param name="meterFactory">Creates the transport's meter.</param>
    public SocketTransportFactory(IOptions<SocketTransportOptions> options, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Transport.Sockets");
        _metrics = new SocketMetrics(meterFactory);
        // The host validated these at start; a factory created by hand gets the same check and message.
        new SocketTransportOptionsValidator(nameof(SocketTransportOptions), null).ThrowIfInvalid(_options);

        if (_options.InlineCompletions)
        {
            Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        }

        if (_options.IoThreadCount > 0 && Environment.GetEnvironmentVariable(IoThreadCountVariable) is null)
        {
            Environment.SetEnvironmentVariable(IoThreadCountVariable, _options.IoThreadCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        // One pool for every listener and client connection of this transport, so blocks freed by one serve the next.
        _memoryPool = new BlockMemoryPool(TimeProvider.System, _options.MemoryPoolTrimInterval, _logger,
            _options.ReturnMemoryWhenIdle ? IdleMemoryCollector.Shared : null);
        _drainDeadlines = new DrainDeadlines(TimeProvider.System, _options.DrainTimeout, _logger);
        _clientSettings = new SocketConnectionSettings(_options, new TransportListenOptions(), _memoryPool, _logger, _drainDeadlines);
    }

    /// <inheritdoc />
    public string Name => "socket";

    /// <inheritdoc />
    /// <remarks>An <see cref="InheritedSocketEndPoint"/> it takes over when its socket is a TCP or Unix stream socket.</remarks>
    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint or UnixDomainSocketEndPoint
        or InheritedSocketEndPoint { Socket: { SocketType: SocketType.Stream, AddressFamily: AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 or AddressFamily.Unix } };

    /// <inheritdoc />
    public bool CanConnect(EndPoint endpoint) => endpoint is IPEndPoint or UnixDomainSocketEndPoint or DnsEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        BindAsync(endpoint, new TransportListenOptions(), cancellationToken);

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, TransportListenOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(options);
        if (!CanBind(endpoint))
        {
            throw new NotSupportedException($"The socket transport cannot bind {endpoint.GetType().Name} '{endpoint}'.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (endpoint is InheritedSocketEndPoint { IsListening: false } inherited)
        {
            // systemd's Accept=yes: one connection, already accepted.
            if (inherited.Socket.RemoteEndPointOrNull() is null)
            {
                throw new IOException($"{inherited.Url}: the inherited stream socket neither listens nor is connected.");
            }

            return new ValueTask<IConnectionListener>(new AcceptedSocketListener(inherited, _options, options, _memoryPool, _logger, _drainDeadlines));
        }

        EpollEngine? engine = _options.PreferTransportIoThreads && EpollNative.IsSupported ? EpollEngine.GetShared(_options.IoThreadCount, _logger) : null;
        var listener = new SocketConnectionListener(endpoint, _options, options, _memoryPool, _logger, _metrics, TimeProvider.System, _drainDeadlines, engine);
        listener.Bind();
        return new ValueTask<IConnectionListener>(listener);
    }

    /// <inheritdoc />
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!CanConnect(endpoint))
        {
            throw new NotSupportedException($"The socket transport cannot connect to {endpoint.GetType().Name} '{endpoint}'.");
        }

        Socket socket = endpoint switch
        {
            UnixDomainSocketEndPoint => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
            IPEndPoint ip => new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
            _ => new Socket(SocketType.Stream, ProtocolType.Tcp),
        };

        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw SocketErrors.ToConnectException(endpoint, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = new SocketConnection(socket, _clientSettings);
        connection.Start();
        return connection;
    }
}
