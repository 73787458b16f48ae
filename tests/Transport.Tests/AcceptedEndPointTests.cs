using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.DependencyInjection;
using Transport.Hosting;
using Transport.Sockets;

namespace Transport.Tests;

/// <summary>
/// A connection accepted on the transport's I/O threads has no .NET <see cref="Socket"/> until someone asks for one: its
/// addresses come from the accept itself. They must be what .NET's Socket reports for the same descriptor and what the
/// client sees from its side, on every address shape a listener can have, and the socket feature must still work.
/// </summary>
public sealed class AcceptedEndPointTests
{
    public static TheoryData<string, string, bool> Cases()
    {
        var cases = new TheoryData<string, string, bool>();
        foreach (bool ioThreads in new[] { true, false })
        {
            cases.Add("tcp://127.0.0.1:0", "127.0.0.1", ioThreads);
            cases.Add("tcp://[::1]:0", "::1", ioThreads);
            // Wildcards: each connection's own address is the one the client reached, asked of the kernel per connection.
            cases.Add("tcp://0.0.0.0:0", "127.0.0.1", ioThreads);
            // A dual-mode IPv6 wildcard, reached over IPv4 and over IPv6.
            cases.Add("tcp://[::]:0", "127.0.0.1", ioThreads);
            cases.Add("tcp://[::]:0", "::1", ioThreads);
            cases.Add("unix", "", ioThreads);
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task TheConnectionsAddresses_AreWhatTheSocketAndTheClientSee(string url, string connectTo, bool ioThreads)
    {
        var seen = new Seen();
        await using TransportTestServer server = await TransportTestServer.StartAsync(b =>
        {
            b.Host.Services.AddSingleton(seen);
            b.Host.Services.Configure<SocketTransportOptions>(o => o.PreferTransportIoThreads = ioThreads);
            b.Transport.AddProtocol<AddressProtocol>("addresses")
                .Listen(url == "unix" ? b.ListenUrl(TestTransport.Unix) : url, "addresses");
        });

        EndPoint target = server.EndPoint is IPEndPoint listening
            ? new IPEndPoint(IPAddress.Parse(connectTo), listening.Port)
            : server.EndPoint;
        using var client = target is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(target).DefaultTimeout();
        client.Send("?"u8);

        Observed observed = await seen.Observed.Task.DefaultTimeout();

        // What .NET's Socket reports for the same descriptor (made on demand, after the connection's own were noted).
        Assert.Equal(observed.SocketLocal, observed.Local);
        Assert.Equal(observed.SocketRemote, observed.Remote);
        Assert.NotNull(observed.Local);
        Assert.NotNull(observed.Remote);

        if (client.LocalEndPoint is IPEndPoint clientSide && client.RemoteEndPoint is IPEndPoint clientReached)
        {
            // The client's two addresses, as the server sees them (mapped to IPv6 on a dual-mode listener).
            Assert.Equal(clientSide.Port, ((IPEndPoint)observed.Remote!).Port);
            Assert.Equal(clientReached.Port, ((IPEndPoint)observed.Local!).Port);
            Assert.Equal(Normalise(clientSide.Address), Normalise(((IPEndPoint)observed.Remote!).Address));
            Assert.Equal(Normalise(clientReached.Address), Normalise(((IPEndPoint)observed.Local!).Address));
            // The transport's NoDelay default holds whether or not it set it without a Socket.
            Assert.True(observed.NoDelay);
        }
        else
        {
            Assert.Equal(((UnixDomainSocketEndPoint)server.EndPoint).ToString(), observed.Local!.ToString());
        }

        // The socket the feature gave is the connection's: it still echoes through it after the fact.
        Assert.Equal("!"u8.ToArray(), await ReceiveAsync(client, 1).DefaultTimeout());
    }

    private static IPAddress Normalise(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static async Task<byte[]> ReceiveAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        int read = 0;
        while (read < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return buffer[..read];
    }

    private sealed record Observed(EndPoint? Local, EndPoint? Remote, EndPoint? SocketLocal, EndPoint? SocketRemote, bool NoDelay);

    private sealed class Seen
    {
        public TaskCompletionSource<Observed> Observed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Notes the connection's addresses, then the socket feature's, and answers "!" through the pipe.</summary>
    private sealed class AddressProtocol(Seen seen) : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            EndPoint? local = connection.LocalEndPoint;
            EndPoint? remote = connection.RemoteEndPoint;
            System.IO.Pipelines.ReadResult result = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(result.Buffer.End);
            try
            {
                Socket socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
                bool noDelay = socket.AddressFamily != AddressFamily.Unix && socket.NoDelay;
                seen.Observed.TrySetResult(new Observed(local, remote, socket.LocalEndPoint, socket.RemoteEndPoint, noDelay));
            }
            catch (Exception ex)
            {
                seen.Observed.TrySetException(ex);
            }

            await connection.Transport.Output.WriteAsync("!"u8.ToArray());
        }
    }
}
