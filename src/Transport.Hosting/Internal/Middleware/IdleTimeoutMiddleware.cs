using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Transport.Internal;

namespace Transport.Hosting.Internal.Middleware;

/// <summary>
/// <c>Limits:IdleTimeout</c> and <c>Limits:MaxConnectionLifetime</c> for any protocol: with an idle timeout, the
/// connection's pipes note the time of each read that returns data and each completed flush (without one they are
/// left as they are); one sweep for the whole server finds the connections idle for too long or older than their
/// lifetime, asks each to close, and aborts those still open after the grace period.
/// </summary>
internal sealed class IdleTimeoutMiddleware(ConnectionDelegate next, string endpoint, TimeSpan timeout, TimeSpan lifetime, IdleSweeper sweeper)
{
    public const string Name = "idle-timeout";

    public const string LifetimeName = "max-connection-lifetime";

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        IDuplexPipe transport = connection.Transport;
        var entry = new IdleSweeper.Entry(connection, endpoint, timeout, lifetime, sweeper.Time);
        if (timeout > TimeSpan.Zero)
        {
            connection.Transport = new ActivityDuplexPipe(transport, entry);
        }

        sweeper.Add(entry);
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            sweeper.Remove(entry);
            connection.Transport = transport;
        }
    }

    private sealed class ActivityDuplexPipe(IDuplexPipe inner, IdleSweeper.Entry entry) : IDuplexPipe
    {
        public PipeReader Input { get; } = new ActivityPipeReader(inner.Input, entry);

        public PipeWriter Output { get; } = new ActivityPipeWriter(inner.Output, entry);
    }

    private sealed class ActivityPipeReader(PipeReader inner, IdleSweeper.Entry entry) : PipeReader
    {
        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            ReadResult result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            Note(result);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            Note(result);
            return true;
        }

        private void Note(ReadResult result)
        {
            if (!result.Buffer.IsEmpty)
            {
                entry.Touch();
            }
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }

    private sealed class ActivityPipeWriter(PipeWriter inner, IdleSweeper.Entry entry) : PipeWriter
    {
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void Advance(int bytes) => inner.Advance(bytes);

        // Activity is the moment the protocol hands bytes over, taken before they leave (so it never depends on when the
        // flush's continuation runs), and again when a flush that waited on back-pressure ends: a slow reader is traffic.
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            entry.Touch();
            ValueTask<FlushResult> flush = inner.FlushAsync(cancellationToken);
            return flush.IsCompletedSuccessfully ? flush : TouchWhenDoneAsync(flush);
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            entry.Touch();
            ValueTask<FlushResult> flush = inner.WriteAsync(source, cancellationToken);
            return flush.IsCompletedSuccessfully ? flush : TouchWhenDoneAsync(flush);
        }

        private async ValueTask<FlushResult> TouchWhenDoneAsync(ValueTask<FlushResult> flush)
        {
            FlushResult result = await flush.ConfigureAwait(false);
            entry.Touch();
            return result;
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}

/// <summary>
/// The one sweep over every connection with an idle timeout or a maximum lifetime, on one timer for the server. It visits every entry each
/// time, whatever closing one does: a close or abort can run continuations inline that remove entries, which the
/// concurrent dictionary's enumeration tolerates; an exception from one entry is logged and the sweep goes on.
/// </summary>
internal sealed class IdleSweeper : IDisposable
{
    private readonly ConcurrentDictionary<Entry, byte> _entries = new();
    private readonly ITimer _timer;
    private readonly ILogger _logger;
    private readonly TransportMetrics _metrics;

    public IdleSweeper(TimeSpan shortestTimeout, TimeProvider time, ILogger logger, TransportMetrics metrics)
    {
        Time = time;
        _logger = logger;
        _metrics = metrics;
        // A quarter of the shortest timeout: a connection is closed at most a quarter late.
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(shortestTimeout.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
        _timer = time.CreateTimer(static state => ((IdleSweeper)state!).Sweep(), this, period, period);
    }

    public TimeProvider Time { get; }

    public void Add(Entry entry) => _entries.TryAdd(entry, 0);

    public void Remove(Entry entry) => _entries.TryRemove(entry, out _);

    public void Dispose() => _timer.Dispose();

    private void Sweep()
    {
        long now = Time.GetTimestamp();
        foreach (Entry entry in _entries.Keys)
        {
            try
            {
                entry.Check(now, this);
            }
            catch (Exception ex)
            {
                IdleLog.SweepFailed(_logger, entry.Connection.ConnectionId, entry.Endpoint, ex);
            }
        }
    }

    /// <summary>One connection's clocks; a zero <paramref name="timeout"/> or <paramref name="lifetime"/> is not checked.</summary>
    internal sealed class Entry(ConnectionContext connection, string endpoint, TimeSpan timeout, TimeSpan lifetime, TimeProvider time)
    {
        private readonly long _startedAt = time.GetTimestamp();
        private long _lastActivity = time.GetTimestamp();
        private long _closeRequestedAt;
        private int _state;
        private bool _lifetimeReached;

        public ConnectionContext Connection { get; } = connection;

        public string Endpoint { get; } = endpoint;

        public void Touch() => Volatile.Write(ref _lastActivity, time.GetTimestamp());

        public void Check(long now, IdleSweeper sweeper)
        {
            if (_state == 0)
            {
                bool idle = timeout > TimeSpan.Zero && time.GetElapsedTime(Volatile.Read(ref _lastActivity), now) >= timeout;
                bool old = !idle && lifetime > TimeSpan.Zero && time.GetElapsedTime(_startedAt, now) >= lifetime;
                if (!idle && !old)
                {
                    return;
                }

                _state = 1;
                _closeRequestedAt = now;
                _lifetimeReached = old;
                if (old)
                {
                    sweeper._metrics.CountMaxConnectionLifetime(Endpoint);
                    IdleLog.ClosingOld(sweeper._logger, Connection.ConnectionId, Endpoint, lifetime);
                }
                else
                {
                    sweeper._metrics.CountIdleTimeout(Endpoint);
                    IdleLog.ClosingIdle(sweeper._logger, Connection.ConnectionId, Endpoint, timeout);
                }

                if (Connection is TransportConnection transport)
                {
                    transport.EndReason = old ? ConnectionEndReasons.MaxConnectionLifetime : ConnectionEndReasons.IdleTimeout;
                }

                Connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
            }
            else if (_state == 1 && time.GetElapsedTime(_closeRequestedAt, now) >= TransportLimits.IdleCloseGracePeriod)
            {
                _state = 2;
                if (_lifetimeReached)
                {
                    IdleLog.AbortingOld(sweeper._logger, Connection.ConnectionId, Endpoint, TransportLimits.IdleCloseGracePeriod);
                    Connection.Abort(new ConnectionAbortedException($"The connection reached its maximum lifetime of {lifetime} and did not close when asked."));
                }
                else
                {
                    IdleLog.AbortingIdle(sweeper._logger, Connection.ConnectionId, Endpoint, TransportLimits.IdleCloseGracePeriod);
                    Connection.Abort(new ConnectionAbortedException($"The connection was idle for {timeout} and did not close when asked."));
                }
            }
        }
    }
}

internal static partial class IdleLog
{
    [LoggerMessage(50, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' had no traffic for {Timeout}; asking it to close.")]
    public static partial void ClosingIdle(ILogger logger, string connectionId, string endpoint, TimeSpan timeout);

    [LoggerMessage(51, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' did not close within {Grace} of being asked; aborting it.")]
    public static partial void AbortingIdle(ILogger logger, string connectionId, string endpoint, TimeSpan grace);

    [LoggerMessage(100, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' is older than Limits:MaxConnectionLifetime ({Lifetime}); asking it to close.")]
    public static partial void ClosingOld(ILogger logger, string connectionId, string endpoint, TimeSpan lifetime);

    [LoggerMessage(101, LogLevel.Debug, "Connection {ConnectionId} on '{Endpoint}' did not close within {Grace} of being asked at its maximum lifetime; aborting it.")]
    public static partial void AbortingOld(ILogger logger, string connectionId, string endpoint, TimeSpan grace);

    [LoggerMessage(52, LogLevel.Error, "Closing idle connection {ConnectionId} on '{Endpoint}' failed; the sweep goes on.")]
    public static partial void SweepFailed(ILogger logger, string connectionId, string endpoint, Exception exception);
}
