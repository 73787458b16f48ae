using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Benchmarks;

/// <summary>An echo server started in this process, listening on a fresh address.</summary>
internal interface IEchoServer : IAsyncDisposable
{
    EndPoint EndPoint { get; }
}

internal static class EchoServers
{
    public static readonly string[] Names = ["ours-tcp", "ours-unix", "kestrel-tcp", "kestrel-unix", "raw-tcp", "ours-udp", "naive-udp"];

    public static async Task<IEchoServer> StartAsync(string name) => name switch
    {
        "ours-tcp" => await TransportEchoServer.StartAsync(socketPath: null),
        "ours-unix" => await TransportEchoServer.StartAsync(NewSocketPath(name)),
        "kestrel-tcp" => await KestrelEchoServer.StartAsync(socketPath: null),
        "kestrel-unix" => await KestrelEchoServer.StartAsync(NewSocketPath(name)),
        "raw-tcp" => RawSocketEchoServer.Start(),
        "ours-udp" => await TransportEchoServer.StartAsync(socketPath: null, udp: true),
        "naive-udp" => NaiveUdpEchoServer.Start(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown server"),
    };

    private static string NewSocketPath(string name) =>
        Path.Combine(Path.GetTempPath(), $"transport-bench-{Environment.ProcessId}-{name}.sock");

    internal static void DeleteSocketFile(string? path)
    {
        if (path is not null && File.Exists(path))
        {
            File.Delete(path);
        }
    }
}

/// <summary>
/// Stands in for the console lifetime, which would swallow Ctrl+C (it asks a host to stop that nobody waits on).
/// </summary>
internal sealed class BenchmarkHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Ours: a generic host with <c>AddTransport</c> and the echo plugin, no logging providers.</summary>
internal sealed class TransportEchoServer : IEchoServer
{
    private readonly IHost _host;
    private readonly string? _socketPath;

    private TransportEchoServer(IHost host, string? socketPath, EndPoint endPoint)
    {
        _host = host;
        _socketPath = socketPath;
        EndPoint = endPoint;
    }

    public EndPoint EndPoint { get; }

    public static async Task<TransportEchoServer> StartAsync(string? socketPath, bool udp = false)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<IHostLifetime, BenchmarkHostLifetime>();
        // Transport options from the environment for A/B runs, e.g. Transport__Sockets__IoThreadCount=2.
        builder.Configuration.AddEnvironmentVariables();
        string url = udp ? "udp://127.0.0.1:0" : socketPath is null ? "tcp://127.0.0.1:0" : "unix:" + socketPath;
        builder.Services.AddTransport()
            .AddProtocol<EchoProtocol>("echo")
            .Listen(url, "echo");
        IHost host = builder.Build();
        try
        {
            await host.StartAsync();
            IReadOnlyList<TransportBinding> bindings = host.Services.GetRequiredService<ITransportServer>().Bindings;
            if (bindings.Count != 1)
            {
                throw new InvalidOperationException($"expected one binding for {url}, got {bindings.Count}");
            }

            EndPoint bound = bindings[0].EndPoint is UdpEndPoint datagrams ? datagrams.Address : bindings[0].EndPoint;
            return new TransportEchoServer(host, socketPath, bound);
        }
        catch
        {
            host.Dispose();
            EchoServers.DeleteSocketFile(socketPath);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync();
        }
        finally
        {
            _host.Dispose();
            EchoServers.DeleteSocketFile(_socketPath);
        }
    }
}

/// <summary>Kestrel's socket transport with a raw <see cref="ConnectionHandler"/> echo, no HTTP.</summary>
internal sealed class KestrelEchoServer : IEchoServer
{
    private readonly WebApplication _app;
    private readonly string? _socketPath;

    private KestrelEchoServer(WebApplication app, string? socketPath, EndPoint endPoint)
    {
        _app = app;
        _socketPath = socketPath;
        EndPoint = endPoint;
    }

    public EndPoint EndPoint { get; }

    public static async Task<KestrelEchoServer> StartAsync(string? socketPath)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<IHostLifetime, BenchmarkHostLifetime>();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (socketPath is null)
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseConnectionHandler<KestrelEchoHandler>());
            }
            else
            {
                kestrel.ListenUnixSocket(socketPath, listen => listen.UseConnectionHandler<KestrelEchoHandler>());
            }
        });
        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync();
            EndPoint endPoint;
            if (socketPath is null)
            {
                // Port 0: the bound port is only known from the server's addresses once it has started.
                ICollection<string> addresses = app.Services.GetRequiredService<IServer>().Features
                    .GetRequiredFeature<IServerAddressesFeature>().Addresses;
                if (addresses.Count != 1)
                {
                    throw new InvalidOperationException($"expected one Kestrel address, got: {string.Join(", ", addresses)}");
                }

                endPoint = new IPEndPoint(IPAddress.Loopback, new Uri(addresses.First()).Port);
            }
            else
            {
                endPoint = new UnixDomainSocketEndPoint(socketPath);
            }

            return new KestrelEchoServer(app, socketPath, endPoint);
        }
        catch
        {
            await app.DisposeAsync();
            EchoServers.DeleteSocketFile(socketPath);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
        }
        finally
        {
            await _app.DisposeAsync();
            EchoServers.DeleteSocketFile(_socketPath);
        }
    }
}

/// <summary>The same echo as the plugin: write what was read, flush, then release the input.</summary>
internal sealed class KestrelEchoHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        PipeReader input = connection.Transport.Input;
        PipeWriter output = connection.Transport.Output;
        while (true)
        {
            ReadResult result = await input.ReadAsync();
            ReadOnlySequence<byte> buffer = result.Buffer;
            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                output.Write(segment.Span);
            }

            FlushResult flush = await output.FlushAsync();
            input.AdvanceTo(buffer.End);
            if (result.IsCompleted || flush.IsCompleted)
            {
                break;
            }
        }
    }
}

/// <summary>
/// A minimal echo on bare sockets that allocates nothing per message once a connection runs. Not a
/// competitor: run it to check that the load generator allocates nothing either (expect about 0 B/msg).
/// </summary>
internal sealed class RawSocketEchoServer : IEchoServer
{
    private readonly Socket _listener;
    private readonly Task _accepting;
    private readonly List<(Socket Socket, Task Echo)> _connections = [];

    private RawSocketEchoServer(Socket listener)
    {
        _listener = listener;
        EndPoint = listener.LocalEndPoint!;
        _accepting = AcceptAsync();
    }

    public EndPoint EndPoint { get; }

    public static RawSocketEchoServer Start()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(512);
            return new RawSocketEchoServer(listener);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _accepting;
        (Socket Socket, Task Echo)[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        foreach ((Socket socket, _) in connections)
        {
            socket.Dispose();
        }

        await Task.WhenAll(connections.Select(c => c.Echo));
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                Socket socket = await _listener.AcceptAsync();
                socket.NoDelay = true;
                Task echo = EchoAsync(socket);
                lock (_connections)
                {
                    _connections.Add((socket, echo));
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The listener was closed: stop accepting.
        }
    }

    private static async Task EchoAsync(Socket socket)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int received = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                if (received == 0)
                {
                    break;
                }

                int sent = 0;
                while (sent < received)
                {
                    sent += await socket.SendAsync(buffer.AsMemory(sent, received - sent), SocketFlags.None);
                }
            }

            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Reset by the peer or closed at dispose: the connection is over either way.
        }
        finally
        {
            socket.Dispose();
        }
    }
}
