using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Transport.Udp.Internal;

namespace Transport.Udp;

/// <summary>
/// The UDP transport. A listener presents each remote peer (address and port) as one connection: each read
/// yields exactly one datagram from that peer and each flush sends exactly one datagram to it. A client
/// connection is a connected UDP socket with the same semantics.
/// </summary>
public sealed class UdpTransportFactory : ITransportFactory, Transport.Internal.IBuiltInTransport
{
    private readonly UdpTransportOptions _options;
    private readonly ILogger _logger;
    private readonly UdpMetrics _metrics;

    /// <summary>Creates the transport.</summary>
    /// <param name="options">The transport's options.</param>
    /// <param name="loggerFactory">Creates the transport's logger.</param>
    /// <param name="meterFactory">Creates the transport's meter.</param>
    public UdpTransportFactory(IOptions<UdpTransportOptions> options, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        // The host validated these at start; a factory created by hand gets the same check and message.
        new UdpTransportOptionsValidator(nameof(UdpTransportOptions), null).ThrowIfInvalid(_options);

        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Transport.Udp");
        _metrics = new UdpMetrics(meterFactory);
    }

    /// <inheritdoc />
    public string Name => "udp";

    /// <inheritdoc />
    /// <remarks>An <see cref="InheritedSocketEndPoint"/> it takes over when its socket is an IPv4 or IPv6 datagram socket.</remarks>
    public bool CanBind(EndPoint endpoint) => endpoint is UdpEndPoint { Address: IPEndPoint }
        or InheritedSocketEndPoint { Socket: { SocketType: SocketType.Dgram, AddressFamily: AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 } };

    /// <inheritdoc />
    public bool CanConnect(EndPoint endpoint) => endpoint is UdpEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        BindAsync(endpoint, new TransportListenOptions(), cancellationToken);

    /// <inheritdoc />
    /// <remarks>The stream buffer limits in <paramref name="options"/> do not apply to datagrams; <see cref="UdpTransportOptions"/> bounds them.</remarks>
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, TransportListenOptions options, CancellationToken cancellationToken = default)
    {
        if (!CanBind(endpoint))
        {
            throw new NotSupportedException($"The UDP transport cannot bind {endpoint?.GetType().Name} '{endpoint}'.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        Socket socket = endpoint is InheritedSocketEndPoint inherited
            ? inherited.Socket
            : UdpListenSocket.Bind((UdpEndPoint)endpoint, _options, options?.ReusePort ?? false);
        return new ValueTask<IConnectionListener>(new UdpConnectionListener(socket, _options, _logger, _metrics, options));
    }

    /// <inheritdoc />
    public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not UdpEndPoint udp)
        {
            throw new NotSupportedException($"The UDP transport cannot connect to {endpoint?.GetType().Name} '{endpoint}'.");
        }

        Socket socket = udp.Address is IPEndPoint ip
            ? new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp)
            : new Socket(SocketType.Dgram, ProtocolType.Udp);
        try
        {
            await socket.ConnectAsync(udp.Address, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new ConnectionRefusedException($"Cannot connect to {udp}: {ex.Message}", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var channel = new UdpClientChannel(socket, _options, _logger);
        channel.Start();
        return channel.Connection;
    }
}
