using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.AspNetCore.Internal;

/// <summary>
/// A client connection as the <see cref="Stream"/> <see cref="SocketsHttpHandler"/> reads and writes; disposing the
/// stream closes the connection.
/// </summary>
internal sealed class ConnectionStream : DuplexPipeStream
{
    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly ILogger _logger;
    private int _disposed;

    public ConnectionStream(ConnectionContext connection, ILogger logger)
        : base(connection.Transport)
    {
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _logger = logger;
    }

    public override async ValueTask DisposeAsync()
    {
        if (CompletePipes())
        {
            await DisposeConnectionAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        // SocketsHttpHandler disposes its streams synchronously: the pipes end here, and the connection finishes
        // closing (sending what is buffered, waiting for the peer's end) without blocking this thread.
        if (disposing && CompletePipes())
        {
            _ = DisposeConnectionAsync();
        }

        base.Dispose(disposing);
    }

    private bool CompletePipes()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        _input.Complete();
        _output.Complete();
        return true;
    }

    private async Task DisposeConnectionAsync()
    {
        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            AspNetCoreLog.ClientConnectionDisposeFailed(_logger, _connection.ConnectionId, ex);
        }
    }
}
