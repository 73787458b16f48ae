using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Hosting;

namespace Transport.Tests;

/// <summary>What the socket transport does with whatever already sits at a Unix socket path.</summary>
public sealed class UnixSocketPathTests : IDisposable
{
    private readonly string _directory = EchoServer.NewTempDirectory();

    private string SocketPath => Path.Combine(_directory, "echo.sock");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task MissingDirectory_IsCreated_AndSocketFileRemovedOnCleanShutdown()
    {
        Assert.False(Directory.Exists(_directory));
        TransportTestServer server = await StartAsync();
        Assert.True(File.Exists(SocketPath));

        await server.Host.StopAsync().DefaultTimeout();

        Assert.False(File.Exists(SocketPath));
        server.Host.Dispose();
    }

    [Fact]
    public async Task StaleSocketFile_NobodyListening_IsReplaced()
    {
        await CreateStaleSocketFileAsync(SocketPath);
        Assert.True(File.Exists(SocketPath));

        await using TransportTestServer server = await StartAsync();
        await using ConnectionContext client = await server.ConnectAsync();
        await client.SendAsync("fresh"u8.ToArray());

        Assert.Equal("fresh"u8.ToArray(), await client.ReceiveExactlyAsync(5));
        Assert.Contains(server.Logs.At(LogLevel.Information), e => e.Message.Contains("Removed stale Unix socket file", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LiveSocket_AnotherServerListening_IsAnError_AndThatServerKeepsItsSocket()
    {
        Directory.CreateDirectory(_directory);
        using var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        other.Bind(new UnixDomainSocketEndPoint(SocketPath));
        other.Listen();

        AddressInUseException ex = await Assert.ThrowsAsync<AddressInUseException>(StartAsync);

        Assert.Contains("another server is listening", ex.Message, StringComparison.Ordinal);
        Assert.Contains(SocketPath, ex.Message, StringComparison.Ordinal);
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await probe.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath)).DefaultTimeout();
    }

    [Fact]
    public async Task RegularFileAtPath_IsNeverDeleted_AndStartFails()
    {
        Directory.CreateDirectory(_directory);
        await File.WriteAllTextAsync(SocketPath, "precious data");

        AddressInUseException ex = await Assert.ThrowsAsync<AddressInUseException>(StartAsync);

        Assert.Contains("not a socket", ex.Message, StringComparison.Ordinal);
        Assert.Equal("precious data", await File.ReadAllTextAsync(SocketPath));
    }

    private Task<TransportTestServer> StartAsync() =>
        TransportTestServer.StartAsync(b => b.Transport.AddProtocol<Transport.Protocols.Echo.EchoProtocol>("echo").Listen("unix:" + SocketPath, "echo"));

    /// <summary>
    /// Leaves a socket file behind the way a crashed server does: a process binds and listens, then exits without
    /// unlinking (.NET's own Socket removes its file when disposed, so another process plays the crashed server).
    /// </summary>
    private static async Task CreateStaleSocketFileAsync(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var result = await Tool.RunAsync(Tool.RequireOnPath("python3"),
            ["-c", "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)", path]);
        Assert.Equal(0, result.ExitCode);
    }
}
