using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Transport.Hosting.Internal.Middleware;

/// <summary>Options of the built-in <c>logging</c> middleware.</summary>
internal sealed class ConnectionLoggingOptions
{
    public const string DefaultLoggerName = "Transport.Connections";

    /// <summary>The log category of the byte dumps.</summary>
    public string LoggerName { get; set; } = DefaultLoggerName;

    public static void Bind(IConfiguration configuration, ConnectionLoggingOptions options) =>
        options.LoggerName = configuration["LoggerName"] is { Length: > 0 } name ? name : options.LoggerName;
}

/// <summary>
/// The built-in <c>logging</c> middleware, as Kestrel's <c>UseConnectionLogging</c>: every read and write of the
/// protocol, at Debug, with the bytes (after TLS, when it runs before). Costs nothing when Debug is off for its category.
/// </summary>
internal sealed class LoggingConnectionMiddleware(ILoggerFactory loggerFactory) : IConnectionMiddleware<ConnectionLoggingOptions>
{
    public const string Name = "logging";

    public ConnectionDelegate Create(ConnectionDelegate pipeline, ConnectionLoggingOptions options, ConnectionMiddlewareContext context)
    {
        ILogger logger = loggerFactory.CreateLogger(options.LoggerName);
        if (!logger.IsEnabled(LogLevel.Debug))
        {
            return pipeline;
        }

        return async connection =>
        {
            IDuplexPipe transport = connection.Transport;
            connection.Transport = new LoggingDuplexPipe(transport, logger, connection.ConnectionId);
            try
            {
                await pipeline(connection).ConfigureAwait(false);
            }
            finally
            {
                connection.Transport = transport;
            }
        };
    }

    private sealed class LoggingDuplexPipe(IDuplexPipe inner, ILogger logger, string connectionId) : IDuplexPipe
    {
        public PipeReader Input { get; } = new LoggingPipeReader(inner.Input, logger, connectionId);

        public PipeWriter Output { get; } = new LoggingPipeWriter(inner.Output, logger, connectionId);
    }

    private sealed class LoggingPipeReader(PipeReader inner, ILogger logger, string connectionId) : PipeReader
    {
        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            ReadResult result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            Dump(logger, connectionId, "read", result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            Dump(logger, connectionId, "read", result.Buffer);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }

    private sealed class LoggingPipeWriter(PipeWriter inner, ILogger logger, string connectionId) : PipeWriter
    {
        private Memory<byte> _buffer;

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer = inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        public override void Advance(int bytes)
        {
            Dump(logger, connectionId, "wrote", new ReadOnlySequence<byte>(_buffer[..bytes]));
            _buffer = default;
            inner.Advance(bytes);
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            Dump(logger, connectionId, "wrote", new ReadOnlySequence<byte>(source));
            return inner.WriteAsync(source, cancellationToken);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }

    private const int MaxDumpedBytes = 256;

    private static void Dump(ILogger logger, string connectionId, string direction, ReadOnlySequence<byte> bytes)
    {
        if (!logger.IsEnabled(LogLevel.Debug) || bytes.IsEmpty)
        {
            return;
        }

        ReadOnlySequence<byte> shown = bytes.Slice(0, Math.Min(bytes.Length, MaxDumpedBytes));
        var hex = new StringBuilder((int)shown.Length * 3);
        var text = new StringBuilder((int)shown.Length);
        foreach (ReadOnlyMemory<byte> segment in shown)
        {
            foreach (byte b in segment.Span)
            {
                hex.Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)).Append(' ');
                text.Append(b is >= 0x20 and < 0x7F ? (char)b : '.');
            }
        }

        string more = bytes.Length > shown.Length ? " …" : "";
        ConnectionLoggingLog.Bytes(logger, connectionId, direction, bytes.Length, hex.ToString().TrimEnd() + more, text.ToString() + more);
    }
}

internal static partial class ConnectionLoggingLog
{
    [LoggerMessage(1, LogLevel.Debug, "Connection {ConnectionId} {Direction} {Count} bytes: {Hex} | {Text}")]
    public static partial void Bytes(ILogger logger, string connectionId, string direction, long count, string hex, string text);
}
