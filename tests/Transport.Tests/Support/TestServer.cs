using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Transport.Hosting;
using Transport.Protocols.Echo;

namespace Transport.Tests.Support;

/// <summary>A started generic host running the Transport server, and a client that shares its service provider.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly string? _tempDirectory;

    private TestServer(IHost host, string? tempDirectory, ListLoggerProvider logs)
    {
        Host = host;
        _tempDirectory = tempDirectory;
        Logs = logs;
        Client = host.Services.GetRequiredService<TransportConnectionFactory>();
    }

    public IHost Host { get; }

    public ListLoggerProvider Logs { get; }

    public TransportConnectionFactory Client { get; }

    public IReadOnlyList<TransportBinding> Bindings => Host.Services.GetRequiredService<ITransportServer>().Bindings;

    public EndPoint EndPoint => Bindings[0].EndPoint;

    /// <summary>The URL of a transport for the conformance theories: tcp4, tcp6, unix, memory.</summary>
    public static string UrlFor(string transport, string tempDirectory) => transport switch
    {
        "tcp4" => "tcp://127.0.0.1:0",
        "tcp6" => "tcp://[::1]:0",
        "unix" => "unix:" + Path.Combine(tempDirectory, "echo.sock"),
        "memory" => "memory://echo-" + Guid.NewGuid().ToString("N"),
        _ => throw new ArgumentOutOfRangeException(nameof(transport), transport, null),
    };

    public static string NewTempDirectory() =>
        Path.Combine(Path.GetTempPath(), "transport-tests", Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Starts an echo server on the given transport, with optional extra configuration.</summary>
    public static Task<TestServer> StartEchoAsync(string transport, Action<TransportLimits>? limits = null,
        Action<ITransportBuilder>? configure = null)
    {
        string temp = NewTempDirectory();
        return StartAsync(
            builder =>
            {
                builder.AddProtocol<EchoProtocol>("echo").Listen(UrlFor(transport, temp), "echo", limits);
                configure?.Invoke(builder);
            },
            temp);
    }

    public static async Task<TestServer> StartAsync(Action<ITransportBuilder> configure, string? tempDirectory = null,
        Action<IServiceCollection>? services = null)
    {
        var logs = new ListLoggerProvider();
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.SetMinimumLevel(LogLevel.Debug).AddProvider(logs);
        configure(builder.Services.AddTransport());
        services?.Invoke(builder.Services);
        IHost host = builder.Build();
        try
        {
            await host.StartAsync().DefaultTimeout();
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new TestServer(host, tempDirectory, logs);
    }

    public async Task<ConnectionContext> ConnectAsync(int binding = 0) =>
        await Client.ConnectAsync(Bindings[binding].EndPoint).DefaultTimeout();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync().DefaultTimeout();
        }
        finally
        {
            Host.Dispose();
            if (_tempDirectory is not null && Directory.Exists(_tempDirectory))
            {
                Directory.Delete(_tempDirectory, recursive: true);
            }
        }
    }
}

/// <summary>Client-side helpers over a connection's pipes.</summary>
internal static class ConnectionExtensions
{
    public static async Task SendAsync(this ConnectionContext connection, ReadOnlyMemory<byte> data)
    {
        FlushResult flush = await connection.Transport.Output.WriteAsync(data).DefaultTimeout();
        Assert.False(flush.IsCompleted, "the connection stopped taking data");
    }

    /// <summary>Reads until <paramref name="count"/> bytes arrived; fails if the stream ends first.</summary>
    public static async Task<byte[]> ReceiveExactlyAsync(this ConnectionContext connection, int count)
    {
        var received = new byte[count];
        int filled = 0;
        System.IO.Pipelines.PipeReader input = connection.Transport.Input;
        while (filled < count)
        {
            System.IO.Pipelines.ReadResult result = await input.ReadAsync().DefaultTimeout();
            ReadOnlySequence<byte> buffer = result.Buffer;
            long take = Math.Min(buffer.Length, count - filled);
            buffer.Slice(0, take).CopyTo(received.AsSpan(filled));
            filled += (int)take;
            input.AdvanceTo(buffer.GetPosition(take));
            if (filled < count && result.IsCompleted)
            {
                throw new EndOfStreamException($"the stream ended after {filled} of {count} bytes");
            }
        }

        return received;
    }

    /// <summary>Reads everything until the peer closes.</summary>
    public static async Task<byte[]> ReceiveToEndAsync(this ConnectionContext connection)
    {
        var all = new MemoryStream();
        System.IO.Pipelines.PipeReader input = connection.Transport.Input;
        while (true)
        {
            System.IO.Pipelines.ReadResult result = await input.ReadAsync().DefaultTimeout();
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                all.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return all.ToArray();
            }
        }
    }

    public static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }
}
